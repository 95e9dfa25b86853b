// Fetch URLs with Node's fetch (undici) or https.get (the core agent), configured
// only by the environment: NODE_USE_ENV_PROXY=1 makes Node (>= 22.21, 24) read
// HTTPS_PROXY/NO_PROXY at start-up; NODE_EXTRA_CA_CERTS adds the test CA.
//
//   node proxy_clients.mjs fetch|https URL...
//
// Prints a JSON list of {url, ok, detail}.
import https from 'node:https';

const [mode, ...urls] = process.argv.slice(2);

function httpsGet(url) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode < 400 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

async function viaFetch(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(10000) });
  await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

const results = [];
for (const url of urls) {
  try {
    await (mode === 'fetch' ? viaFetch(url) : httpsGet(url));
    results.push({ url, ok: true, detail: '' });
  } catch (e) {
    results.push({ url, ok: false, detail: String(e.cause ?? e) });
  }
}
console.log(JSON.stringify(results));
process.exit(0);
