// Origin: `k6 new --template protocol` (k6 v1.1.0), rendered from github.com/grafana/k6
//   internal/cmd/templates/protocol.js @ 0e3fb953be73a968cbbe7f98ba796515254f6ea4 (tag v1.1.0)
// Changed: the template already reads __ENV.BASE_URL; only its default https://quickpizza.grafana.com
//   -> http://127.0.0.1:8080; stages divided by 10
//   (10s / 20s / 1s -> 1s / 2s / 100ms).
// Covers: setup() calling exec.test.abort() when the target is down (exit 108), stages, thresholds on
//   http_req_failed and http_req_duration, a JSON POST with headers, res.json().

import http from "k6/http";
import exec from 'k6/execution';
import { check, sleep } from "k6";

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';

export const options = {
  stages: [
    { duration: "1s", target: 5 },
    { duration: "2s", target: 10 },
    { duration: "100ms", target: 0 },
  ], 
  thresholds: {
    http_req_failed: ["rate<0.01"],
    http_req_duration: ["p(95)<500", "p(99)<1000"],
  },
};

export function setup() {
  let res = http.get(BASE_URL);
  if (res.status !== 200) {
    exec.test.abort(`Got unexpected status code ${res.status} when trying to setup. Exiting.`);
  }
}

export default function() {
  let restrictions = {
    maxCaloriesPerSlice: 500,
    mustBeVegetarian: false,
    excludedIngredients: ["pepperoni"],
    excludedTools: ["knife"],
    maxNumberOfToppings: 6,
    minNumberOfToppings: 2
  };

  let res = http.post(BASE_URL + "/api/pizza", JSON.stringify(restrictions), {
    headers: {
      'Content-Type': 'application/json',
      'Authorization': 'token abcdef0123456789',
    },
  });

  check(res, { "status is 200": (res) => res.status === 200 });
  console.log(res.json().pizza.name + " (" + res.json().pizza.ingredients.length + " ingredients)");
  sleep(1);
}
