// Origin: github.com/grafana/k6 examples/thresholds_readme_example.js @ 0e3fb953be73a968cbbe7f98ba796515254f6ea4 (tag v1.1.0)
// Changed: the target https://quickpizza.grafana.com -> BASE (__ENV.BASE_URL, default http://127.0.0.1:8080);
//   stages shortened from 1m / 3m30s / 30s to 1s / 2s / 1s (the comments still say the original).
// Covers: thresholds on a built-in metric, a tag-filtered sub-metric (http_req_duration{staticAsset:yes}),
//   a custom Rate with string + {threshold, abortOnFail} items, stages, group, http.batch with tags.
// Note: its 'http2 is used' check can only pass over TLS (k6 speaks HTTP/2 only via ALPN), so against a
//   plain-http loopback target check_failure_rate is 1.0 and the script's own abortOnFail ends it: exit 99.

import http from "k6/http";
import { check, group, sleep } from "k6";
import { Rate } from "k6/metrics";

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';

// A custom metric to track failure rates
var failureRate = new Rate("check_failure_rate");

// Options
export let options = {
    stages: [
        // Linearly ramp up from 1 to 50 VUs during first minute
        { target: 50, duration: "1s" },
        // Hold at 50 VUs for the next 3 minutes and 30 seconds
        { target: 50, duration: "2s" },
        // Linearly ramp down from 50 to 0 50 VUs over the last 30 seconds
        { target: 0, duration: "1s" }
        // Total execution time will be ~5 minutes
    ],
    thresholds: {
        // We want the 95th percentile of all HTTP request durations to be less than 500ms
        "http_req_duration": ["p(95)<750"],
        // Requests with the staticAsset tag should finish even faster
        "http_req_duration{staticAsset:yes}": ["p(99)<500"],
        // Thresholds based on the custom metric we defined and use to track application failures
        "check_failure_rate": [
            // Global failure rate should be less than 1%
            "rate<0.01",
            // Abort the test early if it climbs over 5%
            { threshold: "rate<=0.05", abortOnFail: true },
        ],
    },
};

// Main function
export default function () {
    let response = http.get(`${BASE}/test.k6.io/`);

    // check() returns false if any of the specified conditions fail
    let checkRes = check(response, {
        "http2 is used": (r) => r.proto === "HTTP/2.0",
        "status is 200": (r) => r.status === 200,
        "content is present": (r) => r.body.indexOf("This is a replacement of the service ") !== -1,
    });

    // We reverse the check() result since we want to count the failures
    failureRate.add(!checkRes);

    // Load static assets, all requests
    group("Static Assets", function () {
        // Execute multiple requests in parallel like a browser, to fetch some static resources
        let resps = http.batch([
            ["GET", `${BASE}/test.k6.io/static/css/site.css`, null, { tags: { staticAsset: "yes" } }],
            ["GET", `${BASE}/test.k6.io/static/favicon.ico`, null, { tags: { staticAsset: "yes" } }],
            ["GET", `${BASE}/test.k6.io/static/js/prisms.js`, null, { tags: { staticAsset: "yes" } }],
        ]);
        // Combine check() call with failure tracking
        failureRate.add(!check(resps, {
            "status is 200": (r) => r[0].status === 200 && r[1].status === 200,
            "reused connection": (r) => r[0].timings.connecting == 0,
        }));
    });

    sleep(Math.random() * 3 + 2); // Random sleep between 2s and 5s
}
