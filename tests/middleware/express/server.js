// Express apps with the `cors` middleware as their users configure it, for the browser suite.
//
//   node tests/middleware/express/server.js --port N --cert PEM --key PEM --wire URL --mounts JSON
//
// The command line of the Python servers (tests/middleware/common.py). Serves https on 127.0.0.1; each
// configuration is its own Express app mounted at the scenario's prefix (`mounts`: prefix -> configuration name). Every request is reported to `wire` (JSON POST) before any app sees
// it. The endpoints are the ones tests/middleware/common.py lists.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const { parseArgs } = require("node:util");
const cors = require("cors");
const express = require("express");

const APP_ORIGIN = "https://app.example.test";

function ok(req, res) {
  res.type("text/plain").send("ok");
}

const handlers = {
  get: ["get", "/get", ok],
  json: ["post", "/json", (req, res) => res.json({ ok: true, got: req.body })],
  put: ["put", "/item", ok],
  delete: ["delete", "/item/:id", ok],
  auth: ["get", "/auth", ok],
  error: [
    "get",
    "/error",
    () => {
      throw new Error("the view failed");
    },
  ],
  headers: [
    "get",
    "/headers",
    (req, res) => {
      res.set({ "X-Total-Count": "42", "X-Request-Id": "r-1" });
      ok(req, res);
    },
  ],
};

// The shared endpoints; `perRoute` (e.g. `cors()`) is put in front of each handler.
function endpoints(app, ...perRoute) {
  app.use(express.json());
  for (const [method, path, handler] of Object.values(handlers)) {
    app[method](path, ...perRoute, handler);
  }
  return app;
}

// `app.use(cors(options))` before the routes, the way cors' README starts.
function global(options) {
  const app = express();
  app.use(cors(options));
  return endpoints(app);
}

const configs = {
  default: () => global(),
  "origin-true-credentials": () => global({ origin: true, credentials: true }),
  "origin-array-trailing-slash": () => global({ origin: [APP_ORIGIN + "/"] }),
  "origin-array-credentials-exposed": () =>
    global({ origin: [APP_ORIGIN, "https://admin.example.test"], credentials: true, exposedHeaders: ["X-Total-Count"] }),
  "preflight-continue": () => global({ preflightContinue: true }),
  // Narrowed, and optionsSuccessStatus 200 for "legacy browsers" as cors' README suggests.
  "restricted-options-success-200": () =>
    global({ origin: APP_ORIGIN, methods: ["GET", "POST"], allowedHeaders: ["Content-Type"], optionsSuccessStatus: 200 }),
  // The README's origin callback that rejects with an Error: Express answers 500 (no CORS headers).
  "origin-callback-error": () =>
    global({
      origin: (origin, callback) =>
        ["https://www.example.test"].includes(origin) ? callback(null, true) : callback(new Error("Not allowed by CORS")),
    }),
  // cors() on each route, and app.options() only for /json: the other preflights get Express' own answer.
  "route-level": () => {
    const app = express();
    app.options("/json", cors());
    return endpoints(app, cors());
  },
  // app.use(cors()) after the routes: routes answer without CORS headers; preflights and 404s reach cors().
  "cors-after-routes": () => {
    const app = endpoints(express());
    app.use(cors());
    return app;
  },
};

function report(wire, req) {
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
  const body = JSON.stringify({
    scheme: "https",
    method: req.method,
    host: req.headers.host || "",
    target: req.url,
    headers,
  });
  return new Promise((resolve, reject) => {
    const out = http.request(wire, { method: "POST", headers: { "Content-Type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    out.on("error", reject);
    out.end(body);
  });
}

function main() {
  const flags = ["port", "cert", "key", "wire", "mounts"];
  const { values: options } = parseArgs({ options: Object.fromEntries(flags.map((f) => [f, { type: "string" }])) });
  const root = express();
  // One request per connection: a connection the server drops can never be the one mitmproxy reuses next.
  root.use((req, res, next) => {
    res.setHeader("Connection", "close");
    report(options.wire, req).then(() => next(), next);
  });
  for (const [prefix, name] of Object.entries(JSON.parse(options.mounts))) {
    if (!(name in configs)) throw new Error(`unknown configuration ${name}; known: ${Object.keys(configs)}`);
    root.use(prefix, configs[name]());
  }
  const tls = { cert: fs.readFileSync(options.cert), key: fs.readFileSync(options.key) };
  https.createServer(tls, root).listen(Number(options.port), "127.0.0.1");
}

main();
