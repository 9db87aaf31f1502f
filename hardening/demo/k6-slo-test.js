// k6 SLO load test for the payments API: a ramp-up scenario, then a spike.
//
//   k6 run loadtest/k6-slo-test.js --env BASE_URL=http://127.0.0.1:8080 [--env PROFILE=quick|demo|full]
//
// Environment:
//   BASE_URL  service under test (default http://127.0.0.1:8080)
//   PROFILE   quick (~7 s, 10 VUs max, for tests), demo (~60 s, 30 VUs), full (~8 min, 100 VUs; the seed's run)
//   SLO_FILE  SLO spec, {"thresholds": {...k6 thresholds...}, "metrics": {...}} (default ./slo.json).
//             k6's open() resolves a relative path against THIS script's directory, not the shell's:
//             pass an absolute path when the file lives elsewhere.
//
// Exit codes (k6): 0 all thresholds held; 99 a threshold was crossed (SLO fail);
// 107 script/init error (bad PROFILE, missing or malformed SLO_FILE); 108 target unreachable (setup abort).
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PROFILE = (__ENV.PROFILE || 'demo').toLowerCase();
const SLO_FILE = __ENV.SLO_FILE || './slo.json';

// Stages as [seconds, target VUs]; think = [min, max] seconds of sleep per iteration (bounds the load).
const PROFILES = {
  quick: {
    ramp: [[1, 3], [2, 5], [1, 0]],
    spike: [[1, 10], [1, 10], [1, 0]],
    think: [0.2, 0.4],
    grace: '2s',
  },
  demo: {
    ramp: [[10, 10], [25, 10], [5, 0]],
    spike: [[5, 30], [10, 30], [5, 0]],
    think: [0.3, 0.7],
    grace: '5s',
  },
  full: {
    ramp: [[60, 20], [120, 50], [90, 50], [30, 0]],
    spike: [[10, 100], [60, 100], [10, 20], [60, 20], [40, 0]],
    think: [0.5, 1.5],
    grace: '10s',
  },
};

const profile = PROFILES[PROFILE];
if (!profile) {
  throw new Error(`unknown PROFILE "${PROFILE}": use one of ${Object.keys(PROFILES).join(', ')}`);
}

let slo;
try {
  slo = JSON.parse(open(SLO_FILE));
} catch (err) {
  throw new Error(`cannot read SLO_FILE "${SLO_FILE}" (relative paths start at the script's directory): ${err}`);
}
if (!slo || typeof slo.thresholds !== 'object' || slo.thresholds === null || Array.isArray(slo.thresholds)) {
  throw new Error(`SLO_FILE "${SLO_FILE}" has no "thresholds" object (expected {"thresholds": {...}, "metrics": {...}})`);
}

const stages = (list) => list.map(([seconds, target]) => ({ duration: `${seconds}s`, target }));
const rampSeconds = profile.ramp.reduce((sum, [seconds]) => sum + seconds, 0);

export const options = {
  scenarios: {
    ramp_up: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: stages(profile.ramp),
      gracefulRampDown: profile.grace,
      gracefulStop: profile.grace,
    },
    spike: {
      executor: 'ramping-vus',
      startVUs: 0,
      startTime: `${rampSeconds}s`,
      stages: stages(profile.spike),
      gracefulRampDown: profile.grace,
      gracefulStop: profile.grace,
    },
  },
  thresholds: slo.thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

const paymentDuration = new Trend('payment_duration', true);
const queueDuration = new Trend('queue_duration', true);
const paymentsSuccessful = new Counter('payments_successful');
const paymentsFailed = new Counter('payments_failed');

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const CURRENCIES = ['USD', 'EUR', 'GBP'];

function parse(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

export function setup() {
  const res = http.get(`${BASE_URL}/health`, { tags: { name: 'GET /health' }, timeout: '5s' });
  if (res.status === 0) {
    exec.test.abort(`target ${BASE_URL} is unreachable (${res.error}); start the service or fix BASE_URL`);
  }
}

export default function () {
  const payment = {
    amount: Math.round(100 + Math.random() * 99900) / 100,
    currency: CURRENCIES[Math.floor(Math.random() * CURRENCIES.length)],
    customer_id: `k6-vu-${exec.vu.idInTest}`,
  };
  const created = http.post(`${BASE_URL}/api/payments`, JSON.stringify(payment), {
    headers: JSON_HEADERS,
    tags: { name: 'POST /api/payments' },
  });
  paymentDuration.add(created.timings.duration);
  const body = parse(created);
  const accepted = check(created, {
    'payment accepted (201)': (r) => r.status === 201,
    'payment has id': () => body !== null && typeof body.id === 'string' && body.status === 'accepted',
  });
  (accepted ? paymentsSuccessful : paymentsFailed).add(1);

  if (accepted) {
    const read = http.get(`${BASE_URL}/api/payments/${body.id}`, { tags: { name: 'GET /api/payments/:id' } });
    const stored = parse(read);
    check(read, {
      'payment readable (200)': (r) => r.status === 200,
      'payment matches': () => stored !== null && stored.id === body.id && stored.currency === payment.currency,
    });
  }

  const stats = http.get(`${BASE_URL}/api/queue/stats`, { tags: { name: 'GET /api/queue/stats' } });
  queueDuration.add(stats.timings.duration);
  const queue = parse(stats);
  check(stats, {
    'queue stats (200)': (r) => r.status === 200,
    'queue length is a number': () => queue !== null && typeof queue.length === 'number',
  });

  if (exec.vu.iterationInScenario % 10 === 0) {
    const health = http.get(`${BASE_URL}/health`, { tags: { name: 'GET /health' } });
    check(health, { 'healthy (200)': (r) => r.status === 200 });
  }

  const [low, high] = profile.think;
  sleep(low + Math.random() * (high - low));
}
