-- floor: GET /floor/ -- signed in, one indexed query, a tiny JSON response.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local req

function init(args)
   req = wrk.format("GET", "/floor/")
end

function request()
   return req
end
