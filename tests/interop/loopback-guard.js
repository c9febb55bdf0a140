'use strict';
// Preloaded (node --require) into every Node process the interop harness starts.
//
// 1. Refuses any HTTP(S) request to a host that is not loopback, so a test can
//    never reach a real Microsoft endpoint (or anything else off this machine).
// 2. msal-node (as used by botframework-connector, which sets no knownAuthorities)
//    always asks https://login.microsoftonline.com/common/discovery/instance
//    whether a custom authority is trusted. Only that one request is redirected
//    to the sandbox's own /common/discovery/instance, named by
//    BOTAUTH_AUTHORITY_HOST (e.g. https://127.0.0.1:PORT).
//    Every redirect is logged to stderr so the run shows it happened.
const http = require('http');
const https = require('https');

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const DISCOVERY_HOST = 'login.microsoftonline.com';
const DISCOVERY_PATH = '/common/discovery/instance';

function target(args) {
    const a0 = args[0];
    if (typeof a0 === 'string' || a0 instanceof URL) {
        const u = new URL(String(a0));
        return { kind: 'url', host: u.hostname, path: u.pathname + u.search };
    }
    if (a0 && typeof a0 === 'object') {
        const host = a0.hostname || (a0.host ? String(a0.host).replace(/:\d+$/, '') : 'localhost');
        return { kind: 'opts', host, path: a0.path || '/' };
    }
    return { kind: 'none', host: 'localhost', path: '/' };
}

function redirectOptions(args, t) {
    const sandbox = process.env.BOTAUTH_AUTHORITY_HOST;
    if (!sandbox) return null;
    const s = new URL(sandbox);
    if (!LOOPBACK.has(s.hostname)) return null;
    const base = t.kind === 'opts' ? { ...args[0] } : {};
    const opts = {
        ...base,
        protocol: s.protocol,
        hostname: s.hostname,
        host: s.hostname,
        port: s.port || (s.protocol === 'https:' ? 443 : 80),
        path: t.path,
    };
    opts.headers = { ...(base.headers || {}) };
    for (const k of Object.keys(opts.headers)) if (k.toLowerCase() === 'host') delete opts.headers[k];
    const rest = t.kind === 'url' ? args.slice(1).filter((x) => typeof x === 'function') : args.slice(1);
    // Options given alongside a URL string (method, headers) are kept.
    if (t.kind === 'url' && args[1] && typeof args[1] === 'object') {
        Object.assign(opts, { ...args[1], hostname: opts.hostname, host: opts.host, port: opts.port, path: opts.path, protocol: opts.protocol });
    }
    return [opts, ...rest];
}

function wrap(mod, name, scheme) {
    const orig = mod[name];
    mod[name] = function guarded(...args) {
        const t = target(args);
        if (LOOPBACK.has(t.host)) return orig.apply(this, args);
        if (t.host === DISCOVERY_HOST && t.path.startsWith(DISCOVERY_PATH)) {
            const redirected = redirectOptions(args, t);
            if (redirected) {
                process.stderr.write(`[loopback-guard] ${scheme}://${t.host}${t.path} -> ${process.env.BOTAUTH_AUTHORITY_HOST}${t.path}\n`);
                const viaHttps = redirected[0].protocol === 'https:';
                const m = viaHttps ? https : http;
                const fn = name === 'get' ? m.__botauthOrigGet : m.__botauthOrigRequest;
                return fn.apply(m, redirected);
            }
        }
        const err = new Error(`[loopback-guard] refused non-loopback request to ${scheme}://${t.host}${t.path}`);
        process.stderr.write(err.message + '\n');
        throw err;
    };
}

for (const mod of [http, https]) {
    mod.__botauthOrigRequest = mod.request;
    mod.__botauthOrigGet = mod.get;
}
for (const [mod, scheme] of [[http, 'http'], [https, 'https']]) {
    wrap(mod, 'request', scheme);
    wrap(mod, 'get', scheme);
}

if (typeof globalThis.fetch === 'function') {
    const origFetch = globalThis.fetch;
    globalThis.fetch = function guardedFetch(input, init) {
        const url = new URL(typeof input === 'string' || input instanceof URL ? String(input) : input.url);
        if (!LOOPBACK.has(url.hostname)) {
            const msg = `[loopback-guard] refused non-loopback fetch to ${url.origin}${url.pathname}`;
            process.stderr.write(msg + '\n');
            return Promise.reject(new Error(msg));
        }
        return origFetch(input, init);
    };
}
