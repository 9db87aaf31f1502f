// The k6 script of the judge corpus (tests/make_judge_corpus.py runs it against a loopback server).
// Two scenarios, three request names; a fixed number of iterations, so every run sends the same requests.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';

export const options = {
  scenarios: {
    browse: { executor: 'shared-iterations', exec: 'browse', vus: 6, iterations: 300, maxDuration: '2m' },
    checkout: { executor: 'shared-iterations', exec: 'checkout', vus: 3, iterations: 300, maxDuration: '2m' },
  },
};

export function browse() {
  const list = http.get(`${BASE}/api/items`, { tags: { name: 'GET /api/items' } });
  check(list, { 'items 200': (r) => r.status === 200 });
  const item = http.get(`${BASE}/api/items/${(__ITER % 50) + 1}`, { tags: { name: 'GET /api/items/:id' } });
  check(item, { 'item 200': (r) => r.status === 200 });
}

export function checkout() {
  const res = http.post(`${BASE}/api/checkout`, JSON.stringify({ item: (__ITER % 50) + 1, qty: 1 }), {
    headers: { 'Content-Type': 'application/json' },
    tags: { name: 'POST /api/checkout' },
  });
  check(res, { 'checkout 200': (r) => r.status === 200 });
}
