// Test-harness preload (node --require ./resolve-localhost.cjs): resolves
// every name under .localhost to the loopback address, as RFC 6761 §6.3
// asks of resolvers and as systemd-resolved, curl and browsers already do.
// glibc's resolver does not, so on most Linux machines a vault host such
// as kv1.vault.localhost fails with ENOTFOUND without an /etc/hosts line
// per vault. Node offers no configuration for this, and the alternative —
// writing /etc/hosts — needs root and a line for every name a test picks.
//
// Only name resolution changes: the SDKs are loaded and configured exactly
// as an application would (environment variables and endpoint URLs), and
// every other name resolves as usual.
"use strict";
const dns = require("node:dns");

const isLocalhost = (name) => {
  const h = String(name).toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
};

const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  } else if (typeof options === "number") {
    options = { family: options };
  }
  options = options || {};
  if (!isLocalhost(hostname)) {
    return lookup.call(this, hostname, options, callback);
  }
  const family = options.family === 6 || options.family === "IPv6" ? 6 : 4;
  const address = family === 6 ? "::1" : "127.0.0.1";
  if (options.all) {
    process.nextTick(callback, null, [{ address, family }]);
  } else {
    process.nextTick(callback, null, address, family);
  }
  return {};
};

const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function (hostname, options) {
  if (!isLocalhost(hostname)) {
    return promisesLookup.call(this, hostname, options);
  }
  return new Promise((resolve, reject) =>
    dns.lookup(hostname, options, (err, address, family) => {
      if (err) reject(err);
      else resolve(Array.isArray(address) ? address : { address, family });
    }),
  );
};
