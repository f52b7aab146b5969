-- GET /recommendations?k=10 for a random user from users.lua (written by bench/serve_wrk.sh).
-- RATE (requests/s per connection, 0 = as fast as possible) throttles each connection.
local ids = dofile(os.getenv("USERS_LUA"))
local per_connection = tonumber(os.getenv("RATE_PER_CONNECTION") or "0")

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function delay()
  if per_connection > 0 then
    -- Exponential gaps: an open-loop-like arrival process at the target rate.
    return -math.log(1 - math.random()) * 1000 / per_connection
  end
  return 0
end

function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/recommendations?user_id=" .. id .. "&k=10")
end
