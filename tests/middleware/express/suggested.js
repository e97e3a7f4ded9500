// An Express app configured with nothing but a snippet that `cors.suggest` rendered, for the browser suite
// (tests/browser/test_suggest_frameworks_browser.py).
//
//   node tests/middleware/express/suggested.js --port N --snippet FILE --answers FILE [--cert PEM --key PEM]
//
// The command line of tests/middleware/suggested_apps.py: the app is the one a user has before any CORS
// configuration (one catch-all handler answering what `--answers` lists, Express' own 404 elsewhere); the snippet
// is run as written, with `app` and this file's `require` in scope, before the handler. https with --cert/--key,
// else plain http, on 127.0.0.1.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const { parseArgs } = require("node:util");
const express = require("express");

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    snippet: { type: "string" },
    answers: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
  },
});
const answers = JSON.parse(fs.readFileSync(args.answers, "utf8"));
const app = express();

new Function("app", "require", fs.readFileSync(args.snippet, "utf8"))(app, require);

app.use((req, res, next) => {
  const route = answers[req.path];
  const found = route && req.method !== "OPTIONS" ? route[req.method] || route["*"] : undefined;
  if (!found) return next();
  const [status, headers, body] = found;
  for (const [name, value] of headers) res.set(name, value);
  res.status(status).send(body);
});

const server = args.cert
  ? https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) }, app)
  : http.createServer(app);
server.listen(Number(args.port), "127.0.0.1");
