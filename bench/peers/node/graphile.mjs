// The benchmark workloads against graphile-worker on PostgreSQL
// (bench/peers/run.sh starts a private cluster with fsync=on and
// synchronous_commit=on, PostgreSQL's defaults).
//
//   node graphile.mjs --port P --workload w1-single|w1-batch|w2|w3 [--tasks N] [--seconds S]
import pg from 'pg';
import { Logger, makeWorkerUtils, run, runMigrations } from 'graphile-worker';
import { PAYLOAD, cores, countdown, enqueueLoops, flags, latencyRun, nowUs, printLatency, printRate } from './common.mjs';

const o = flags({ port: 5432, workload: 'w2', tasks: 100000, seconds: 20, rate: 1000, role: 'main' });
const connectionString = `postgres://postgres@127.0.0.1:${o.port}/postgres`;
const logger = new Logger(() => () => {});  // its info logs would swamp the results
const noop = { bench: async () => {}, lat: async () => {} };

// The throughput settings graphile-worker's own performance page uses:
// jobs fetched in batches into a local queue, completions batched.
const FAST = {
  worker: { concurrentJobs: 24, maxPoolSize: 25, localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
};

async function enqueue(clients, batch) {
  const pool = new pg.Pool({ connectionString, max: clients });
  const utils = await makeWorkerUtils({ pgPool: pool, logger });
  const specs = Array.from({ length: batch }, () => ({ identifier: 'bench', payload: PAYLOAD }));
  const ms = await enqueueLoops(o.tasks, clients, batch,
    (c, n) => (batch === 1 ? utils.addJob('bench', PAYLOAD) : utils.addJobs(specs.slice(0, n))));
  await utils.release();
  await pool.end();
  return ms;
}

if (o.role === 'worker') {
  const lat = [];
  const total = o.rate * o.seconds;
  const runner = await run({
    connectionString, concurrency: 24, noHandleSignals: true, logger,
    taskList: {
      lat: async (payload) => {
        lat.push((nowUs() - payload.t) / 1000);
        if (lat.length === total) process.send({ lat });
      },
    },
  });
  process.send({ ready: true });
  process.on('message', async () => { await runner.stop(); process.exit(0); });
} else {
  await runMigrations({ connectionString, logger });
  if (o.workload === 'w1-single' || o.workload === 'w1-batch') {
    const single = o.workload === 'w1-single';
    const ms = await enqueue(single ? 64 : 4, single ? 1 : 1000);
    printRate(`graphile-worker W1 enqueue: tasks=${o.tasks} ${single ? '64 connections, addJob' : '4 connections, addJobs of 1000'} cores=${cores()}`, o.tasks, ms);
  } else if (o.workload === 'w2') {
    await enqueue(4, 1000);  // not timed
    const completed = countdown(o.tasks);
    const start = performance.now();
    const runner = await run({ connectionString, noHandleSignals: true, taskList: noop, logger, preset: FAST });
    runner.events.on('job:success', completed.tick);
    await completed.done;
    const ms = performance.now() - start;
    printRate(`graphile-worker W2 drain: one runner, its performance-page settings (24 concurrent, local queue 500, batched completions), no-op task cores=${cores()}`, completed.count, ms);
    await runner.stop();
  } else if (o.workload === 'w3') {
    const pool = new pg.Pool({ connectionString, max: 1 });
    const utils = await makeWorkerUtils({ pgPool: pool, logger });
    const lat = await latencyRun(import.meta.url, o, () => utils.addJob('lat', { t: nowUs(), pad: 'x'.repeat(70) }));
    printLatency(`graphile-worker W3 latency: ${o.rate}/s for ${o.seconds} s, one runner (24 concurrent, LISTEN/NOTIFY, no local queue) in its own process cores=${cores()}`, lat);
    await utils.release();
    await pool.end();
  } else {
    throw new Error(`unknown workload ${o.workload}`);
  }
  process.exit(0);
}
