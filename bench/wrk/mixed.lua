-- Mixed traffic for bench/soak.sh: 80% GET /recommendations?k=10, 20% POST
-- /events (a view), random shoppers from users.lua and items from items.lua.
-- RATE_PER_CONNECTION (requests/s per connection, 0 = as fast as possible)
-- throttles each connection with exponential gaps.
local ids = dofile(os.getenv("USERS_LUA"))
local items = dofile(os.getenv("ITEMS_LUA"))
local per_connection = tonumber(os.getenv("RATE_PER_CONNECTION") or "0")

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function delay()
  if per_connection > 0 then
    return -math.log(1 - math.random()) * 1000 / per_connection
  end
  return 0
end

function request()
  local user = ids[math.random(#ids)]
  if math.random() < 0.2 then
    local body = string.format('{"user_id":%d,"item_id":%d,"event":"view"}',
      user, items[math.random(#items)])
    return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/recommendations?user_id=" .. user .. "&k=10")
end
