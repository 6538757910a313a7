// The benchmark workloads against BullMQ on redis-server (bench/peers/run.sh
// starts redis with the durability asked for). Jobs keep BullMQ's defaults:
// completed jobs are kept, as Dray keeps finished tasks.
//
//   node bullmq.mjs --port P --workload w1-single|w1-batch|w2|w3 [--tasks N] [--seconds S]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { PAYLOAD, cores, flags, nowUs, paced, printLatency, printRate } from './common.mjs';

const o = flags({ port: 6379, workload: 'w2', tasks: 100000, seconds: 20, rate: 1000, role: 'main' });
const connection = { host: '127.0.0.1', port: o.port };
const NAME = 'bench';

async function enqueue(clients, batch) {
  const queues = Array.from({ length: clients }, () => new Queue(NAME, { connection }));
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  let next = 0;
  const start = performance.now();
  await Promise.all(queues.map(async (q) => {
    for (;;) {
      const first = next;
      next += batch;
      if (first >= o.tasks) return;
      const n = Math.min(batch, o.tasks - first);
      if (batch === 1) await q.add('bench', PAYLOAD);
      else await q.addBulk(Array.from({ length: n }, () => ({ name: 'bench', data: PAYLOAD })));
    }
  }));
  const ms = performance.now() - start;
  await Promise.all(queues.map((q) => q.close()));
  return ms;
}

if (o.role === 'worker') {
  // W3's worker, in a process of its own like Dray's.
  const lat = [];
  const total = o.rate * o.seconds;
  const w = new Worker(NAME, async (job) => {
    if (typeof job.data.t !== 'number') return null;
    lat.push((nowUs() - job.data.t) / 1000);
    if (lat.length === total) process.send({ lat });
    return null;
  }, { connection, concurrency: 1 });
  await w.waitUntilReady();
  process.send({ ready: true });
  process.on('message', async () => { await w.close(); process.exit(0); });
} else if (o.workload === 'w1-single' || o.workload === 'w1-batch') {
  const single = o.workload === 'w1-single';
  const ms = await enqueue(single ? 64 : 4, single ? 1 : 1000);
  printRate(`bullmq W1 enqueue: tasks=${o.tasks} ${single ? '64 clients, Queue.add' : '4 clients, Queue.addBulk of 1000'} cores=${cores()}`, o.tasks, ms);
  process.exit(0);
} else if (o.workload === 'w2') {
  await enqueue(4, 1000);  // not timed
  let done = 0;
  let finish;
  const finished = new Promise((r) => { finish = r; });
  const start = performance.now();
  const workers = Array.from({ length: 4 }, () => {
    const w = new Worker(NAME, async () => null, { connection, concurrency: 64 });
    w.on('completed', () => { if (++done === o.tasks) finish(); });
    return w;
  });
  await finished;
  const ms = performance.now() - start;
  printRate(`bullmq W2 drain: 4 Workers x concurrency 64, no-op processor, completed jobs kept cores=${cores()}`, done, ms);
  await Promise.all(workers.map((w) => w.close()));
  process.exit(0);
} else if (o.workload === 'w3') {
  const child = fork(fileURLToPath(import.meta.url),
    ['--port', String(o.port), '--role', 'worker', '--rate', String(o.rate), '--seconds', String(o.seconds)]);
  const result = new Promise((resolve) => child.on('message', (m) => { if (m.lat) resolve(m.lat); }));
  await new Promise((resolve) => child.once('message', resolve));  // ready
  const q = new Queue(NAME, { connection });
  await q.waitUntilReady();
  await paced(o.rate * o.seconds, o.rate, () => q.add('lat', { t: nowUs(), pad: 'x'.repeat(70) }));
  const lat = await result;
  child.send('stop');
  printLatency(`bullmq W3 latency: ${o.rate}/s for ${o.seconds} s, one Worker (concurrency 1) in its own process cores=${cores()}`, lat);
  await q.close();
  process.exit(0);
} else {
  throw new Error(`unknown workload ${o.workload}`);
}
