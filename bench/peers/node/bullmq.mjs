// The benchmark workloads against BullMQ on redis-server (bench/peers/run.sh
// starts redis with the durability asked for). Jobs keep BullMQ's defaults:
// completed jobs are kept, as Dray keeps finished tasks.
//
//   node bullmq.mjs --port P --workload w1-single|w1-batch|w2|w3 [--tasks N] [--seconds S]
import { Queue, Worker } from 'bullmq';
import { PAYLOAD, cores, countdown, enqueueLoops, flags, latencyRun, nowUs, printLatency, printRate } from './common.mjs';

const o = flags({ port: 6379, workload: 'w2', tasks: 100000, seconds: 20, rate: 1000, role: 'main' });
const connection = { host: '127.0.0.1', port: o.port };
const NAME = 'bench';

async function enqueue(clients, batch) {
  const queues = Array.from({ length: clients }, () => new Queue(NAME, { connection }));
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  const ms = await enqueueLoops(o.tasks, clients, batch, (c, n) => (batch === 1
    ? queues[c].add('bench', PAYLOAD)
    : queues[c].addBulk(Array.from({ length: n }, () => ({ name: 'bench', data: PAYLOAD })))));
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
  const completed = countdown(o.tasks);
  const start = performance.now();
  const workers = Array.from({ length: 4 }, () => {
    const w = new Worker(NAME, async () => null, { connection, concurrency: 64 });
    w.on('completed', completed.tick);
    return w;
  });
  await completed.done;
  const ms = performance.now() - start;
  printRate(`bullmq W2 drain: 4 Workers x concurrency 64, no-op processor, completed jobs kept cores=${cores()}`, completed.count, ms);
  await Promise.all(workers.map((w) => w.close()));
  process.exit(0);
} else if (o.workload === 'w3') {
  const q = new Queue(NAME, { connection });
  await q.waitUntilReady();
  const lat = await latencyRun(import.meta.url, o, () => q.add('lat', { t: nowUs(), pad: 'x'.repeat(70) }));
  printLatency(`bullmq W3 latency: ${o.rate}/s for ${o.seconds} s, one Worker (concurrency 1) in its own process cores=${cores()}`, lat);
  await q.close();
  process.exit(0);
} else {
  throw new Error(`unknown workload ${o.workload}`);
}
