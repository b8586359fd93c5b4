-- wrk script for bench/intake.py: POST pre-signed W&B webhook bodies, never one twice.
--
--   wrk ... -s bench/intake.lua URL -- BODIES_PREFIX PATH TOKEN
--
-- Lua has no HMAC, so bench/intake.py writes one file of "<signature>\t<body>" lines
-- per wrk thread (BODIES_PREFIX.1, .2, ...); each thread reads its own file in order.
-- A thread that runs out starts its file again (repeats are answered 200 duplicate_of
-- by the bridge) and counts it in `wrapped`. Status codes are counted per thread; the
-- "event_id" of each 202 answer (the bridge's; the baseline's answer has none) goes to
-- BODIES_PREFIX.ids.<thread>, one a line, so bench/intake.py can check that each was
-- delivered. done() prints one "BENCH_RESULT {json}" line that bench/intake.py parses.

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   bodies = assert(io.open(args[1] .. "." .. id, "r"))
   -- fully buffered; C's exit() flushes it when wrk ends
   ids = assert(io.open(args[1] .. ".ids." .. id, "w"))
   path = args[2]
   token = "Bearer " .. args[3]
   wrapped = 0
   codes = {}
end

function request()
   local line = bodies:read("*l")
   if line == nil then
      wrapped = wrapped + 1
      bodies:seek("set", 0)
      line = bodies:read("*l")
   end
   local tab = string.find(line, "\t", 1, true)
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = token,
      ["X-Wandb-Signature"] = string.sub(line, 1, tab - 1),
   }
   return wrk.format("POST", path, headers, string.sub(line, tab + 1))
end

function response(status, headers, body)
   codes[status] = (codes[status] or 0) + 1
   if status == 202 then
      local event_id = string.match(body, '"event_id"%s*:%s*"([^"]+)"')
      if event_id then
         ids:write(event_id, "\n")
      end
   end
end

function done(summary, latency, requests)
   local total, wraps = {}, 0
   for _, thread in ipairs(threads) do
      wraps = wraps + thread:get("wrapped")
      for code, n in pairs(thread:get("codes")) do
         total[code] = (total[code] or 0) + n
      end
   end
   local parts = {}
   for code, n in pairs(total) do
      table.insert(parts, string.format('"%d":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"wrapped":%d,"codes":{%s},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, wraps, table.concat(parts, ","),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
