// Node's own fetch (undici), proxied by NODE_USE_ENV_PROXY=1 (Node >= 22.21):
// Node reads HTTPS_PROXY/NO_PROXY at start-up and installs undici's
// EnvHttpProxyAgent as the global dispatcher; NODE_EXTRA_CA_CERTS adds the
// corporate CA. fetch has no client-certificate option and Node exposes no
// `undici` import, so for mTLS a second dispatcher of that same class (it reads
// the same variables) gets the client pair corpnet names, for the origin's TLS
// through the proxy (requestTls) and when going direct (connect).
import fs from 'node:fs';

const url = process.argv[2];
const fail = (message) => { console.log(message); process.exit(1); };
const EnvAgent = globalThis[Symbol.for('undici.globalDispatcher.1')]?.constructor;
if (EnvAgent?.name !== 'EnvHttpProxyAgent') {
  fail(`NODE_USE_ENV_PROXY is not in effect (dispatcher ${EnvAgent?.name}, node ${process.version})`);
}
const init = { signal: AbortSignal.timeout(15000) };
if (process.env.CLAUDE_CODE_CLIENT_CERT) {
  const tls = {
    cert: fs.readFileSync(process.env.CLAUDE_CODE_CLIENT_CERT),
    key: fs.readFileSync(process.env.CLAUDE_CODE_CLIENT_KEY),
    passphrase: process.env.CLAUDE_CODE_CLIENT_KEY_PASSPHRASE,
  };
  init.dispatcher = new EnvAgent({ connect: tls, requestTls: tls });
}
try {
  const res = await fetch(url, init);
  const body = (await res.text()).trim();
  if (!res.ok) fail(`HTTP ${res.status} ${body}`);
  console.log(body);
} catch (e) {
  fail(String(e.cause ?? e));
}
