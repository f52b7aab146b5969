-- GET /recommendations?k=10 for a random user from users.lua (written by bench/serve_wrk.sh).
-- RATE_PER_CONNECTION (requests/s per connection, 0 = as fast as possible) throttles each connection.
-- EVENT_SHARE (0 by default) turns that share of the requests into POST /events: the user views a
-- random item from items.lua (bench/soak.sh's mixed traffic uses 0.2).
local ids = dofile(os.getenv("USERS_LUA"))
local per_connection = tonumber(os.getenv("RATE_PER_CONNECTION") or "0")
local event_share = tonumber(os.getenv("EVENT_SHARE") or "0")
local items = event_share > 0 and dofile(os.getenv("ITEMS_LUA")) or {}

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
  if event_share > 0 and math.random() < event_share then
    local body = string.format('{"user_id":%d,"item_id":%d,"event":"view"}', id, items[math.random(#items)])
    return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/recommendations?user_id=" .. id .. "&k=10")
end
