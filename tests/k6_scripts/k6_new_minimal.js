// Origin: `k6 new` (k6 v1.1.0, default 'minimal' template), rendered from github.com/grafana/k6
//   internal/cmd/templates/minimal.js @ 0e3fb953be73a968cbbe7f98ba796515254f6ea4 (tag v1.1.0)
// Changed: the target https://quickpizza.grafana.com -> BASE (__ENV.BASE_URL, default http://127.0.0.1:8080);
//   duration 30s -> 3s.
// Covers: the template every new k6 user starts from: vus + duration shortcut, check, sleep.

import http from 'k6/http';
import { sleep, check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';

export const options = {
  vus: 10,
  duration: '3s',
};

export default function() {
  let res = http.get(BASE);
  check(res, { "status is 200": (res) => res.status === 200 });
  sleep(1);
}
