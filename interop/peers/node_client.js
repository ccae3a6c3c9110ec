#!/usr/bin/env node
/*
 * Copyright The opamp-rs Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs `@elastic/opamp-client-node` (0.5.0) against an OpAMP server.
 *
 * Usage: node node_client.js URL [--heartbeat SECONDS] [--duration SECONDS] [--service NAME]
 *
 * Prints JSON lines on stdout (key "event"):
 *   started        the agent's instance UID (hex) and capabilities
 *   response       every ServerToAgent received (flags, remote config hash)
 *   send_failed    a failed request (error text, retry delay)
 *   remote_config  a remote config offer: its hash and files (body as text)
 *   config_status  the status the driver reported for the offer (APPLIED)
 *   summary        counts, printed on exit
 * Exits by itself after --duration seconds (default 60).
 */
'use strict';

const {subscribe} = require('diagnostics_channel');
const {
    createOpAMPClient,
    AgentCapabilities,
    RemoteConfigStatuses,
    DIAG_CH_SEND_SUCCESS,
    DIAG_CH_SEND_FAIL,
} = require('@elastic/opamp-client-node');

function parseArgs(argv) {
    const args = {heartbeat: 1, duration: 60, service: 'node-interop-agent'};
    const rest = argv.slice(2);
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === '--heartbeat') args.heartbeat = Number(rest[++i]);
        else if (a === '--duration') args.duration = Number(rest[++i]);
        else if (a === '--service') args.service = rest[++i];
        else if (!args.url) args.url = a;
        else throw new Error(`unexpected argument: ${a}`);
    }
    if (!args.url) throw new Error('usage: node_client.js URL [--heartbeat S] [--duration S]');
    return args;
}

function emit(event, fields) {
    process.stdout.write(JSON.stringify({event, ...fields}) + '\n');
}

const hex = (bytes) => (bytes ? Buffer.from(bytes).toString('hex') : null);

const args = parseArgs(process.argv);
const counters = {responses: 0, full_state_requests: 0, failures: 0, remote_configs: 0};
const REPORT_FULL_STATE = 1n;

const client = createOpAMPClient({
    endpoint: args.url,
    heartbeatIntervalSeconds: args.heartbeat,
    capabilities:
        BigInt(AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig) |
        BigInt(AgentCapabilities.AgentCapabilities_ReportsRemoteConfig),
    diagEnabled: true,
    onMessage: ({remoteConfig}) => {
        if (!remoteConfig) return;
        counters.remote_configs += 1;
        const files = {};
        for (const [name, f] of Object.entries(remoteConfig.config?.configMap ?? {})) {
            files[name] = {
                content_type: f.contentType,
                body: Buffer.from(f.body).toString('utf8'),
            };
        }
        emit('remote_config', {hash: hex(remoteConfig.configHash), files});
        // Elastic's agents take any content type as opaque text here; report it applied.
        client.setRemoteConfigStatus({
            status: RemoteConfigStatuses.RemoteConfigStatuses_APPLIED,
            lastRemoteConfigHash: remoteConfig.configHash,
        });
        emit('config_status', {hash: hex(remoteConfig.configHash), status: 'APPLIED'});
    },
});

subscribe(DIAG_CH_SEND_SUCCESS, (msg) => {
    const s2a = msg.s2a;
    counters.responses += 1;
    const flags = BigInt(s2a.flags ?? 0n);
    const fullState = (flags & REPORT_FULL_STATE) !== 0n;
    if (fullState) counters.full_state_requests += 1;
    emit('response', {
        flags: Number(flags),
        report_full_state: fullState,
        remote_config_hash: s2a.remoteConfig ? hex(s2a.remoteConfig.configHash) : null,
        instance_uid: hex(s2a.instanceUid),
        sequence_num: Number(msg.a2s.sequenceNum),
    });
});
subscribe(DIAG_CH_SEND_FAIL, (msg) => {
    counters.failures += 1;
    emit('send_failed', {error: String(msg.err), retry_after_ms: msg.retryAfterMs ?? null});
});

client.setAgentDescription({
    identifyingAttributes: {'service.name': args.service, 'service.version': '0.5.0'},
    nonIdentifyingAttributes: {'os.type': 'linux', 'telemetry.sdk.language': 'nodejs'},
});
emit('started', {
    instance_uid: hex(client.getInstanceUid()),
    capabilities: Number(client._capabilities),
});
client.start();

async function finish() {
    clearTimeout(timer);
    try {
        await client.shutdown();
    } catch (_err) {
        // already shut down
    }
    emit('summary', counters);
    process.exit(0);
}
const timer = setTimeout(finish, args.duration * 1000);
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
