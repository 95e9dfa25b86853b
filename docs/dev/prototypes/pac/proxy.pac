function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || shExpMatch(host, "*.corp.test")) return "DIRECT";
  if (isInNet(dnsResolve(host), "127.0.0.0", "255.0.0.0")) return "DIRECT";
  if (shExpMatch(url, "https://api.example.com/*")) return "PROXY a.corp.test:3128; PROXY b.corp.test:3128";
  if (dnsDomainIs(host, ".invalid")) return "PROXY dead.invalid:8080";
  return "PROXY proxy.corp.test:3128; DIRECT";
}
