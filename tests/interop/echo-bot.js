'use strict';
// A botbuilder-js CloudAdapter echo bot configured with ConfigurationBotFrameworkAuthentication
// to trust the sandbox's Bot Service and to get its outbound tokens from the sandbox's Entra.
//
// Usage: node --require ./loopback-guard.js echo-bot.js PORT
// Environment: the sandbox's exports (BOTAUTH_AUTHORITY_HOST, BOTAUTH_METADATA_URL, CLIENT_ID,
// CLIENT_SECRET, TENANT_ID; NODE_EXTRA_CA_CERTS before node starts). INTEROP_BOT_CREDENTIAL:
// `secret` (default), `cert` or `cert-config` (INTEROP_CERT_SHA1 / INTEROP_CERT_KEY), see below.
// Prints `listening on http://127.0.0.1:PORT/api/messages` once it accepts requests.
const fs = require('fs');
const http = require('http');
const {
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
} = require('botbuilder');
const { CertificateServiceClientCredentialsFactory } = require('botframework-connector');

const env = process.env;
const port = Number(process.argv[2] || env.INTEROP_BOT_PORT || 0);
const host = env.BOTAUTH_AUTHORITY_HOST.replace(/\/+$/, '');

const config = {
    MicrosoftAppType: 'SingleTenant',
    MicrosoftAppId: env.CLIENT_ID,
    MicrosoftAppTenantId: env.TENANT_ID,
    // Outbound (bot -> Connector): MSAL authority, tenant included, and the token scope.
    ToChannelFromBotLoginUrl: `${host}/${env.TENANT_ID}`,
    ToChannelFromBotOAuthScope: 'https://api.botframework.com',
    // Inbound (Bot Service -> bot): the channel token's issuer and where its keys are published.
    ToBotFromChannelTokenIssuer: 'https://api.botframework.com',
    ToBotFromChannelOpenIdMetadataUrl: env.BOTAUTH_METADATA_URL,
    ToBotFromEmulatorOpenIdMetadataUrl: env.BOTAUTH_METADATA_URL,
    OAuthUrl: host,
    ValidateAuthority: false,
};
let credentialsFactory; // undefined: ConfigurationServiceClientCredentialFactory(config)
const credential = env.INTEROP_BOT_CREDENTIAL || 'secret';
if (credential === 'secret') {
    config.MicrosoftAppPassword = env.CLIENT_SECRET;
} else if (credential === 'cert-config') {
    // Certificate by configuration alone. botframework-connector 4.23.3's
    // CertificateServiceClientCredentialsFactory.createCredentials(appId, audience) drops the
    // login endpoint, so the outbound token is requested from login.microsoftonline.com
    // (refused by loopback-guard.js): kept to demonstrate that limitation, not used by run.sh.
    config.CertificateThumbprint = env.INTEROP_CERT_SHA1;
    config.CertificatePrivateKey = fs.readFileSync(env.INTEROP_CERT_KEY, 'utf8');
} else if (credential === 'cert') {
    // The workaround: the same factory, with the login endpoint it was given applied to the
    // CertificateAppCredentials it creates.
    class LoginEndpointCertificateFactory extends CertificateServiceClientCredentialsFactory {
        async createCredentials(appId, audience, loginEndpoint, validateAuthority) {
            const credentials = await super.createCredentials(appId, audience, loginEndpoint, validateAuthority);
            if (loginEndpoint) credentials.oAuthEndpoint = loginEndpoint;
            return credentials;
        }
    }
    credentialsFactory = new LoginEndpointCertificateFactory(
        env.CLIENT_ID,
        env.INTEROP_CERT_SHA1,
        fs.readFileSync(env.INTEROP_CERT_KEY, 'utf8'),
        env.TENANT_ID,
    );
} else {
    throw new Error(`unknown INTEROP_BOT_CREDENTIAL ${credential}`);
}

const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(config, credentialsFactory));
adapter.onTurnError = async (context, error) => {
    process.stderr.write(`[echo-bot] turn error: ${error && error.stack ? error.stack : error}\n`);
};

async function logic(context) {
    if (context.activity.type === 'message') {
        await context.sendActivity(`echo: ${context.activity.text}`);
    }
}

// The minimal request/response surface CloudAdapter.process() needs (what express/restify give).
function wrapResponse(res) {
    let body;
    return {
        status(code) { res.statusCode = code; return this; },
        header(name, value) { res.setHeader(name, value); return this; },
        send(value) { body = value; res.sentBody = value; return this; },
        end() {
            if (body === undefined) return res.end();
            if (typeof body === 'string' || Buffer.isBuffer(body)) return res.end(body);
            res.setHeader('Content-Type', 'application/json');
            return res.end(JSON.stringify(body));
        },
    };
}

const server = http.createServer((req, res) => {
    if (req.url !== '/api/messages') {
        res.statusCode = 404;
        return res.end();
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
        try {
            req.body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
        } catch (e) {
            res.statusCode = 400;
            return res.end('body is not JSON');
        }
        try {
            await adapter.process(req, wrapResponse(res), logic);
        } catch (err) {
            process.stderr.write(`[echo-bot] process failed: ${err && err.stack ? err.stack : err}\n`);
            if (!res.headersSent) res.statusCode = 500;
            res.end();
        }
        if (res.statusCode >= 400) {
            const detail = res.sentBody === undefined ? '' : `: ${typeof res.sentBody === 'string' ? res.sentBody : JSON.stringify(res.sentBody)}`;
            process.stderr.write(`[echo-bot] answered HTTP ${res.statusCode} to ${req.method} ${req.url}${detail}\n`);
        }
    });
});

server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/api/messages\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
