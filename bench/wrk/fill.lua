-- Fills the service's bounded per-shopper memory before a soak: for each user of users.lua in
-- turn, EVENTS_PER_USER (20, the store's events_per_user) views of random items from items.lua,
-- then ANSWERS_PER_USER (5: 5 answers of k=10 fill the feedback memory's 50 items) recommendation
-- requests; the run stops once every user has had them. Run with one wrk thread.
local ids = dofile(os.getenv("USERS_LUA"))
local items = dofile(os.getenv("ITEMS_LUA"))
local events_per_user = tonumber(os.getenv("EVENTS_PER_USER") or "20")
local answers_per_user = tonumber(os.getenv("ANSWERS_PER_USER") or "5")
local per_user = events_per_user + answers_per_user
local total = #ids * per_user
local sent = 0

function request()
  local n = sent
  sent = sent + 1
  if n >= total then
    wrk.thread:stop()
  end
  local id = ids[(math.floor(n / per_user) % #ids) + 1]
  if n % per_user < events_per_user then
    local body = string.format('{"user_id":%d,"item_id":%d,"event":"view"}', id, items[math.random(#items)])
    return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/recommendations?user_id=" .. id .. "&k=10")
end
