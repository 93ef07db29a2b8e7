-- wrk script for bench/python/load.py: replays pre-signed ClawOps webhooks, one new event per
-- request, and prints one JSON line with the run's numbers.
--
--   wrk -t1 -c32 -d20s --latency -s bench/python/load.lua http://127.0.0.1:PORT/webhooks/clawops \
--       -- REQUESTS.tsv
--
-- REQUESTS.tsv: one request per line, `<X-ClawOps-Signature value> TAB <raw JSON body>` (the
-- bodies are compact JSON, so they hold no TAB and no newline). init() turns every line into a
-- complete HTTP request with wrk.format() up front, so request() only hands out the next string:
-- the per-request Lua cost is one table lookup. Once every line has been sent, request() starts
-- over from the first one: those requests are duplicates (the server answers 200 duplicate=true
-- and stores nothing); load.py reports them as duplicates_sent = sent - loaded.
--
-- Non-2xx answers are counted by wrk itself (summary.errors.status: every status > 399; these
-- servers never answer 1xx/3xx). There is deliberately no response() callback: defining one
-- makes wrk hand every response's headers and body to Lua, which costs load-generator CPU on a
-- 2-core machine where the load generator competes with the server under test.
--
-- Only one thread is supported (-t1): every thread would load the same list and send the same
-- events. The counters are globals so that done() can read them with thread:get().

loaded = 0   -- requests in the file
sent = 0     -- request() calls: requests started (written) by this thread

local requests = {}
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("load.lua: give the request file after --")
   end
   local file = assert(io.open(path, "rb"))
   for line in file:lines() do
      local signature, body = line:match("^([^\t]+)\t(.+)$")
      if signature then
         loaded = loaded + 1
         requests[loaded] = wrk.format("POST", nil, {
            ["Content-Type"] = "application/json",
            ["X-ClawOps-Signature"] = signature,
         }, body)
      end
   end
   file:close()
   if loaded == 0 then
      error("load.lua: no requests in " .. path)
   end
end

function request()
   sent = sent + 1
   return requests[(sent - 1) % loaded + 1]
end

function done(summary, latency, requests_)
   local total_sent, total_loaded = 0, 0
   for _, thread in ipairs(threads) do
      total_sent = total_sent + (thread:get("sent") or 0)
      total_loaded = math.max(total_loaded, thread:get("loaded") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'LOADJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},'
         .. '"sent":%d,"loaded":%d,"threads":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean,
      total_sent, total_loaded, #threads))
end
