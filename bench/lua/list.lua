-- list: GET /patients/?page=N for a random page of the clinic's registry (BENCH_MAX_PAGE pages).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local max_page

function init(args)
   bench.seed_random()
   max_page = tonumber(os.getenv("BENCH_MAX_PAGE") or "1")
end

function request()
   return wrk.format("GET", "/patients/?page=" .. math.random(max_page))
end
