-- POST /events: a random user from users.lua views a random item from items.lua.
local ids = dofile(os.getenv("USERS_LUA"))
local items = dofile(os.getenv("ITEMS_LUA"))

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local body = string.format('{"user_id":%d,"item_id":%d,"event":"view"}',
    ids[math.random(#ids)], items[math.random(#items)])
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
end
