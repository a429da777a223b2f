-- chart: GET /patients/<id>/ for a random patient of the bench clinic.
-- BENCH_DATA_FILE holds one patient id per line (run.py samples them from the database).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local reqs = {}

function init(args)
   bench.seed_random()
   for _, id in ipairs(bench.read_lines(os.getenv("BENCH_DATA_FILE"))) do
      reqs[#reqs + 1] = wrk.format("GET", "/patients/" .. id .. "/")
   end
end

function request()
   return reqs[math.random(#reqs)]
end
