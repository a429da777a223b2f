-- Shared by every scenario script (each one starts with dofile of this file).
--
-- Environment, set by bench/run.py:
--   BENCH_SCENARIO   scenario name, echoed in the JSON summary
--   BENCH_COOKIE     "sessionid=...; csrftoken=..." of the signed-in bench nurse
--   BENCH_DATA_FILE  optional: one item per line (request bodies, patient ids ...)
--
-- Every response that is not a 200 is counted (a 302 to the login page means the session
-- was not accepted); done() prints one line "BENCH_JSON {...}" that run.py parses.

bench = {}
bench.scenario = os.getenv("BENCH_SCENARIO") or "unnamed"

local cookie = os.getenv("BENCH_COOKIE")
if cookie == nil or cookie == "" then
   error("BENCH_COOKIE is not set: run the benchmark through bench/run.py")
end
wrk.headers["Cookie"] = cookie
wrk.headers["User-Agent"] = "ketaclinic-bench (wrk)"

function bench.read_lines(path)
   if path == nil or path == "" then
      error("BENCH_DATA_FILE is not set")
   end
   local lines = {}
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   f:close()
   if #lines == 0 then
      error(path .. " is empty")
   end
   return lines
end

-- Main state: remember the threads so done() can read their counters.
local threads = {}

function setup(thread)
   thread:set("thread_id", #threads + 1)
   table.insert(threads, thread)
end

-- Thread state: counters read back by done().
non200 = 0
redirects = 0
last_bad_status = 0

function bench.seed_random()
   -- Fixed per-thread seeds: every run sends the same request sequence.
   math.randomseed(1000 + (thread_id or 0))
   math.random()
   math.random()
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      last_bad_status = status
      if status >= 300 and status < 400 then
         redirects = redirects + 1
      end
   end
end

local function ms(us)
   return us / 1000.0
end

function done(summary, latency, requests)
   local bad, redir, last = 0, 0, 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non200") or 0)
      redir = redir + (t:get("redirects") or 0)
      local l = t:get("last_bad_status") or 0
      if l ~= 0 then
         last = l
      end
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"scenario":"%s","requests":%d,"duration_s":%.3f,"rps":%.2f,'
         .. '"mean_ms":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,'
         .. '"non200":%d,"redirects":%d,"last_bad_status":%d,"bytes":%d,'
         .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"status_errors":%d}\n',
      bench.scenario, summary.requests, seconds, summary.requests / seconds,
      ms(latency.mean), ms(latency:percentile(50)), ms(latency:percentile(90)),
      ms(latency:percentile(95)), ms(latency:percentile(99)), ms(latency.max),
      bad, redir, last, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status))
end
