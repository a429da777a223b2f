-- search: POST /patients/search/ with q=<query>&csrfmiddlewaretoken=<token>.
-- BENCH_DATA_FILE holds one url-encoded form body per line (run.py writes it); each thread
-- walks the list round-robin from a seeded random start.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local reqs = {}
local i = 0

function init(args)
   bench.seed_random()
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Referer"] = os.getenv("BENCH_REFERER")
   for _, body in ipairs(bench.read_lines(os.getenv("BENCH_DATA_FILE"))) do
      reqs[#reqs + 1] = wrk.format("POST", "/patients/search/", nil, body)
   end
   i = math.random(#reqs) - 1
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end
