// Starter k6 load test written by `hardening init` (the shape of `k6 new`): edit the requests to match
// your service; the SLO file beside it holds the pass/fail thresholds.
//
//   hardening loadtest --base-url http://127.0.0.1:8080 --script loadtest/script.js --slo loadtest/slo.json
//   k6 run loadtest/script.js --env BASE_URL=http://127.0.0.1:8080      (k6 alone, same SLO file)
//
// Environment:
//   BASE_URL  the service under test (default http://127.0.0.1:8080)
//   PROFILE   load shape: quick (5 s), demo (30 s), full (5 min); `hardening loadtest --profile` sets it
//   SLO_FILE  SLO file whose "thresholds" k6 enforces (default ./slo.json, which k6 resolves against this
//             script's folder; `hardening loadtest` passes the file given by --slo)
import http from 'k6/http';
import { sleep, check } from 'k6';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PROFILES = {
  quick: { vus: 2, duration: '5s' },
  demo: { vus: 10, duration: '30s' },
  full: { vus: 20, duration: '5m' },
};
const PROFILE = (__ENV.PROFILE || 'demo').toLowerCase();
const profile = PROFILES[PROFILE];
if (!profile) {
  throw new Error(`unknown PROFILE "${PROFILE}": use one of ${Object.keys(PROFILES).join(', ')}`);
}
const slo = JSON.parse(open(__ENV.SLO_FILE || './slo.json'));

export const options = {
  vus: profile.vus,
  duration: profile.duration,
  thresholds: slo.thresholds,
};

export default function() {
  let res = http.get(`${BASE_URL}/`);
  check(res, { "status is 200": (res) => res.status === 200 });
  sleep(1);
}
