// The benchmark workloads against pg-boss on PostgreSQL (bench/peers/run.sh
// starts a private cluster with fsync=on and synchronous_commit=on).
// pg-boss polls: its shortest polling interval is 0.5 s, which bounds W3.
//
//   node pgboss.mjs --port P --workload w1-single|w1-batch|w2|w3 [--tasks N] [--seconds S]
import PgBoss from 'pg-boss';
import { PAYLOAD, cores, enqueueLoops, flags, latencyRun, nowUs, printLatency, printRate, sleep } from './common.mjs';

const o = flags({ port: 5432, workload: 'w2', tasks: 100000, seconds: 20, rate: 1000, role: 'main' });
const connectionString = `postgres://postgres@127.0.0.1:${o.port}/postgres`;
const NAME = 'bench';

async function boss(max) {
  const b = new PgBoss({ connectionString, max, supervise: false, schedule: false });
  b.on('error', (e) => console.error(e.message));
  await b.start();
  await b.createQueue(NAME);
  return b;
}

async function enqueue(clients, batch) {
  const b = await boss(clients);
  const jobs = Array.from({ length: batch }, () => ({ name: NAME, data: PAYLOAD }));
  const ms = await enqueueLoops(o.tasks, clients, batch,
    (c, n) => (batch === 1 ? b.send(NAME, PAYLOAD) : b.insert(jobs.slice(0, n))));
  await b.stop({ graceful: false, wait: true });
  return ms;
}

async function completed(b) {
  const r = await b.getDb().executeSql(
    "select count(*)::int as n from pgboss.job where name = $1 and state = 'completed'", [NAME]);
  return r.rows[0].n;
}

if (o.role === 'worker') {
  const b = await boss(4);
  const lat = [];
  const total = o.rate * o.seconds;
  await b.work(NAME, { batchSize: 1000, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    const now = nowUs();
    for (const j of jobs) lat.push((now - j.data.t) / 1000);
    if (lat.length >= total) process.send({ lat });
  });
  process.send({ ready: true });
  process.on('message', async () => { await b.stop({ graceful: false, wait: true }); process.exit(0); });
} else if (o.workload === 'w1-single' || o.workload === 'w1-batch') {
  const single = o.workload === 'w1-single';
  const ms = await enqueue(single ? 64 : 4, single ? 1 : 1000);
  printRate(`pg-boss W1 enqueue: tasks=${o.tasks} ${single ? '64 connections, send' : '4 connections, insert of 1000'} cores=${cores()}`, o.tasks, ms);
  process.exit(0);
} else if (o.workload === 'w2') {
  await enqueue(4, 1000);  // not timed
  const b = await boss(10);
  const start = performance.now();
  for (let i = 0; i < 4; i++) {
    await b.work(NAME, { batchSize: 1000, pollingIntervalSeconds: 0.5 }, async () => {});
  }
  let n = 0;
  while ((n = await completed(b)) < o.tasks) await sleep(20);
  const ms = performance.now() - start;
  printRate(`pg-boss W2 drain: 4 workers, batches of 1000 (polling every 0.5 s, its minimum), no-op handler cores=${cores()}`, n, ms);
  await b.stop({ graceful: false, wait: true });
  process.exit(0);
} else if (o.workload === 'w3') {
  const b = await boss(2);
  const lat = await latencyRun(import.meta.url, o, () => b.send(NAME, { t: nowUs(), pad: 'x'.repeat(70) }));
  printLatency(`pg-boss W3 latency: ${o.rate}/s for ${o.seconds} s, one worker (batches of up to 1000, polling every 0.5 s, its minimum) in its own process cores=${cores()}`, lat);
  await b.stop({ graceful: false, wait: true });
  process.exit(0);
} else {
  throw new Error(`unknown workload ${o.workload}`);
}
