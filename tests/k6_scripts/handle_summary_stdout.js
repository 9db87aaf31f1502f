// Origin: https://grafana.com/docs/k6/v1.1.x/results-output/end-of-test/custom-summary/
//   section 'Example: Extract data properties'; source: github.com/grafana/k6-docs
//   docs/sources/k6/v1.1.x/results-output/end-of-test/custom-summary.md @ ede3426984ed733087528a428a2a1d1c5c6a2219
// Changed: only the target https://test.k6.io -> BASE (__ENV.BASE_URL, default http://127.0.0.1:8080).
// Covers: handleSummary() writing to stdout (replaces k6's own end-of-test summary); no `options` export.

import http from 'k6/http';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';

export default function () {
  http.get(BASE);
}

export function handleSummary(data) {
  const med_latency = data.metrics.iteration_duration.values.med;
  const latency_message = `The median latency was ${med_latency}\n`;

  return {
    stdout: latency_message,
  };
}
