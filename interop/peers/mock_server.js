#!/usr/bin/env node
/*
 * Copyright The opamp-rs Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs `@elastic/mockopampserver` (0.5.0) on 127.0.0.1 (a free port) with a remote config.
 *
 * Usage: node mock_server.js [--config-json JSON] [--duration SECONDS]
 *   --config-json  {"file name": {"body": "...", "content_type": "..."}} (default: one JSON file)
 *
 * Prints JSON lines on stdout (key "event"):
 *   listening  the endpoint URL and the hash of the config it offers (hex)
 *   request    every AgentToServer it received and what it answered
 *   summary    counts, printed on exit
 * Exits by itself after --duration seconds (default 60).
 */
'use strict';

const {MockOpAMPServer} = require('@elastic/mockopampserver');

function parseArgs(argv) {
    const args = {
        duration: 60,
        config: {elastic: {body: '{"logging_level":"debug"}', content_type: 'application/json'}},
    };
    const rest = argv.slice(2);
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === '--duration') args.duration = Number(rest[++i]);
        else if (a === '--config-json') args.config = JSON.parse(rest[++i]);
        else throw new Error(`unexpected argument: ${a}`);
    }
    return args;
}

function emit(event, fields) {
    process.stdout.write(JSON.stringify({event, ...fields}) + '\n');
}

const hex = (bytes) => (bytes && bytes.length ? Buffer.from(bytes).toString('hex') : null);

function anyValue(v) {
    if (!v || !v.value) return null;
    const val = v.value.value;
    return typeof val === 'bigint' ? Number(val) : val;
}

function attributes(kvs) {
    const out = {};
    for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value);
    return out;
}

async function main() {
    const args = parseArgs(process.argv);
    const configMap = {};
    for (const [name, f] of Object.entries(args.config)) {
        configMap[name] = {body: Buffer.from(f.body, 'utf8'), contentType: f.content_type};
    }
    const server = new MockOpAMPServer({
        logLevel: 'fatal',
        hostname: '127.0.0.1',
        port: 0,
        testMode: true,
        agentConfigMap: {configMap},
    });
    await server.start();
    emit('listening', {endpoint: server.endpoint, config_hash: hex(server._agentConfigMapHash)});

    let seen = 0;
    const poll = setInterval(() => {
        const reqs = server.testGetRequests();
        for (; seen < reqs.length; seen++) {
            const r = reqs[seen];
            const a2s = r.a2s;
            const s2a = r.s2a;
            emit('request', {
                status: r.res?.statusCode ?? null,
                error: r.err ? String(r.err) : null,
                instance_uid: a2s ? hex(a2s.instanceUid) : null,
                sequence_num: a2s ? Number(a2s.sequenceNum) : null,
                capabilities: a2s ? Number(a2s.capabilities) : null,
                identifying: a2s?.agentDescription
                    ? attributes(a2s.agentDescription.identifyingAttributes)
                    : null,
                non_identifying: a2s?.agentDescription
                    ? attributes(a2s.agentDescription.nonIdentifyingAttributes)
                    : null,
                health: a2s?.health ? {healthy: a2s.health.healthy, status: a2s.health.status} : null,
                effective_config: a2s?.effectiveConfig
                    ? Object.keys(a2s.effectiveConfig.configMap?.configMap ?? {})
                    : null,
                remote_config_status: a2s?.remoteConfigStatus
                    ? {
                          hash: hex(a2s.remoteConfigStatus.lastRemoteConfigHash),
                          status: a2s.remoteConfigStatus.status,
                          error: a2s.remoteConfigStatus.errorMessage,
                      }
                    : null,
                disconnect: Boolean(a2s?.agentDisconnect),
                reply: s2a
                    ? {
                          flags: Number(s2a.flags),
                          remote_config_hash: s2a.remoteConfig ? hex(s2a.remoteConfig.configHash) : null,
                      }
                    : null,
            });
        }
    }, 50);

    async function finish() {
        clearInterval(poll);
        clearTimeout(timer);
        await server.close().catch(() => {});
        emit('summary', {requests: server.testGetRequests().length});
        process.exit(0);
    }
    const timer = setTimeout(finish, args.duration * 1000);
    process.on('SIGTERM', finish);
    process.on('SIGINT', finish);
}

main().catch((err) => {
    emit('fatal', {error: String(err && err.stack ? err.stack : err)});
    process.exit(1);
});
