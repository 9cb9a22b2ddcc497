#!/usr/bin/env node
// Drives the real hot-shots DogStatsD client against tsdbd's UDP listener:
//   node tests/clients/hotshots.js PORT
// Sends a fixed set of counters (two of them sampled), gauges and gauge
// deltas, timers, histograms, distributions and a set, all tagged, to
// 127.0.0.1:PORT over UDP, closes the client (which flushes its buffer and
// waits for the sends), prints one summary line and exits 0.  Exits 1 on
// any client error, and by itself after 15 s whatever happens.
// tests/tools/test_hotshots.c runs this and checks every stored value;
// the two files hold the same list of series, keep them in step.
//
// Sampling: hot-shots decides per call with Math.random() whether a line
// with a rate below 1 goes out.  Math.random is replaced here by a fixed
// cycle of draws that sends exactly rate x calls, none of them near the
// boundary, so the server's total (value / rate per line) must equal the
// unsampled total exactly.  The script checks that hot-shots drew once per
// sampled call, which is what makes the expected figures hold.
'use strict';

const StatsD = require('hot-shots');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error('usage: node hotshots.js PORT');
    process.exit(2);
}

const deadline = setTimeout(() => {
    console.error('hotshots: gave up after 15 s');
    process.exit(1);
}, 15000);

let errors = 0;
const client = new StatsD({
    host: '127.0.0.1',
    port: port,
    prefix: 'hs.',
    globalTags: { env: 'ci' },
    // One datagram carries many lines, as DogStatsD clients send them;
    // 1432 bytes fits a 1500-byte MTU with IPv4 and UDP headers.
    maxBufferSize: 1432,
    bufferFlushInterval: 60000,
    // Nothing from the environment: no DD_* tags, no telemetry series.
    datadog: false,
    includeDataDogTags: false,
    includeDatadogTelemetry: false,
    errorHandler: (err) => {
        errors++;
        console.error(`hotshots: client error: ${err.message}`);
    },
});

// Calls send() n times with Math.random drawing from cycle; returns how
// many draws hot-shots made.
function sampled(n, cycle, send) {
    const real = Math.random;
    let draws = 0;

    Math.random = () => cycle[draws++ % cycle.length];
    try {
        for (let i = 0; i < n; i++) {
            send();
        }
    } finally {
        Math.random = real;
    }
    return draws;
}

// Counters.  Rate 0.5 over 40 calls: 20 lines @0.5, a total of 40.
let draws = sampled(40, [0.1, 0.9], () =>
    client.increment('requests', 1, 0.5, { route: 'home' }));
// Rate 0.25 over 12 calls of 250: 3 lines @0.25, a total of 3000.
draws += sampled(12, [0.1, 0.6, 0.9, 0.3], () =>
    client.increment('bytes_sent', 250, 0.25, ['region:eu-west']));
// No rate; a bare tag becomes canary="true".
for (let i = 0; i < 3; i++) {
    client.increment('logins', ['canary']);
}

// Gauges: the last value wins; deltas add to it.
client.gauge('queue_depth', 7, { queue: 'jobs' });
client.gauge('queue_depth', 42, { queue: 'jobs' });
client.gauge('pool_size', 10);
client.gaugeDelta('pool_size', 5);
client.gaugeDelta('pool_size', -3);

// A timer in ms: stored as a histogram in seconds.
for (const ms of [3, 20, 120, 700, 4000]) {
    client.timing('db.query', ms, { db: 'main' });
}
// A histogram and a distribution, values as they are; the tag key's dot
// becomes an underscore.
for (const v of [0.5, 100, 2000]) {
    client.histogram('payload_bytes', v, { kind: 'upload' });
}
for (const v of [1, 1, 3, 8]) {
    client.distribution('batch_size', v, { 'team.name': 'core' });
}

// A set: 3 distinct members.  Its lines go out in one datagram of their
// own, so that they land in one flush interval of the server.
client.flush(() => {
    for (const m of ['alice', 'bob', 'alice', 'carol']) {
        client.set('users', m, { page: 'checkout' });
    }
    client.close((err) => {
        clearTimeout(deadline);
        if (err) {
            console.error(`hotshots: close failed: ${err.message}`);
            process.exit(1);
        }
        if (draws !== 52) {
            console.error(`hotshots: hot-shots drew ${draws} random ` +
                'numbers for 52 sampled calls; the expected totals ' +
                'no longer hold');
            process.exit(1);
        }
        console.log(`hotshots: sent to 127.0.0.1:${port}, ` +
            `${errors} errors`);
        process.exit(errors === 0 ? 0 : 1);
    });
});
