"""How many bytes corpnet-base adds on top of its base image (budget: 100 MB).

    .venv/bin/python bench/image_size.py [IMAGE] [BASE]

IMAGE defaults to corpnet-base, BASE to the image named by its
org.opencontainers.image.base.name label. Sizes are Docker's uncompressed layer
sizes; the added bytes are the layers IMAGE has beyond BASE's, each listed
with the Dockerfile step that made it (where the bytes are: docs/image.md).
"""

from __future__ import annotations

import sys

from corpnet.build import connect

BUDGET = 100 * 1000 * 1000


def main(argv: list[str]) -> int:
    client = connect()
    image = client.images.get(argv[0] if argv else "corpnet-base")
    labels = image.attrs["Config"].get("Labels") or {}
    base_name = argv[1] if len(argv) > 1 else labels.get("org.opencontainers.image.base.name")
    base = client.images.get(base_name)
    layers, base_layers = image.attrs["RootFS"]["Layers"], base.attrs["RootFS"]["Layers"]
    if layers[: len(base_layers)] != base_layers:
        print(f"{image.tags} is not built on {base_name}", file=sys.stderr)
        return 2
    added = image.attrs["Size"] - base.attrs["Size"]
    mb = 1000 * 1000
    print(f"{'image':<40} {'size':>10}")
    print(f"{base_name:<40} {base.attrs['Size'] / mb:>8.1f} MB")
    print(f"{(image.tags or [image.id])[0]:<40} {image.attrs['Size'] / mb:>8.1f} MB")
    print(f"{'added by corpnet':<40} {added / mb:>8.1f} MB")
    # Newest first, as `docker history`; the base's own entries are left out.
    for step in image.history()[: -len(base.history())]:
        if step["Size"]:
            made_by = " ".join(step["CreatedBy"].replace("/bin/sh -c ", "").split())
            print(f"  {step['Size'] / mb:>8.1f} MB  {made_by[:70]}")
    print(f"added / base: {added / base.attrs['Size']:.2f}x; budget {BUDGET / mb:.0f} MB: "
          f"{'within' if added <= BUDGET else 'OVER'}")  # fmt: skip
    return 0 if added <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
