"""Apply the same ruleset through python3-nftables (libnftables in-process): text and JSON."""
import json, time, nftables
nft = nftables.Nftables()
nft.set_json_output(True)
t = time.perf_counter(); rc, out, err = nft.cmd(open("/w/lockdown.nft").read()); print(f"libnftables cmd(text) rc={rc} {1000*(time.perf_counter()-t):.1f} ms {err.strip()[:200]}")
rc, out, err = nft.cmd("list table inet corpnet")
doc = json.loads(out)
# replay as JSON: delete + re-add the table from the listed objects, one transaction
objs = [o for o in doc["nftables"] if "metainfo" not in o]
batch = {"nftables": [{"add": {"table": {"family": "inet", "name": "corpnet"}}},
                      {"delete": {"table": {"family": "inet", "name": "corpnet"}}}]
                     + [{"add": o} for o in objs]}
t = time.perf_counter(); rc, out, err = nft.json_cmd(batch); print(f"libnftables json_cmd rc={rc} {1000*(time.perf_counter()-t):.1f} ms {str(err)[:300]}")
rc, out, err = nft.cmd("list table inet corpnet"); print("rules after JSON replay:", sum(1 for o in json.loads(out)["nftables"] if "rule" in o))
