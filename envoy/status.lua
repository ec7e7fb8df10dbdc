-- HTTP status fix-ups for transcoded (REST) responses of chatplane.
--
-- This filter sits BEFORE grpc_json_transcoder in http_filters, so on the response path
-- it runs AFTER it and sees the JSON response plus the gRPC trailers. It:
--   * leaves application/grpc* responses alone (native gRPC clients keep plain codes
--     and all their metadata);
--   * replaces :status with `x-chatplane-http-status` (sent by the server as trailing
--     metadata of a unary reply or an error, as initial metadata of a stream, or inside
--     the headers of a trailers-only error) and empties the body for 204;
--   * copies Retry-After and X-RateLimit-* from the trailers into the headers (an
--     HTTP/1.1 client never sees trailers);
--   * removes x-chatplane-* and grpc-status-details-bin headers and trailers, and the
--     grpc-* headers (grpc-status stays in the trailers, which only HTTP/2 clients get).
--
-- Streaming responses (route metadata `streaming: true`, or text/event-stream) are never
-- buffered: only their headers are fixed up.

local STATUS_HEADER = "x-chatplane-http-status"
local INTERNAL_PREFIX = "x-chatplane-"
local FORWARDED = { "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset" }

local function is_grpc(content_type)
  return content_type ~= nil and string.sub(string.lower(content_type), 1, 16) == "application/grpc"
end

local function is_streaming(handle, headers)
  local content_type = headers:get("content-type")
  if content_type ~= nil and string.find(string.lower(content_type), "text/event-stream", 1, true) then
    return true
  end
  local metadata = handle:metadata()
  return metadata ~= nil and metadata:get("streaming") == true
end

-- Removes x-chatplane-* and grpc-status-details-bin from a header or trailer map; with
-- all_grpc, every grpc-* (grpc-status, grpc-message, grpc-accept-encoding: the
-- transcoder copies them into the REST response headers).
local function strip_internal(map, all_grpc)
  local doomed = {}
  for key, _ in pairs(map) do
    if key == "grpc-status-details-bin"
      or string.sub(key, 1, #INTERNAL_PREFIX) == INTERNAL_PREFIX
      or (all_grpc and string.sub(key, 1, 5) == "grpc-")
    then
      doomed[#doomed + 1] = key
    end
  end
  for _, key in ipairs(doomed) do
    map:remove(key)
  end
end

-- Envoy's own error replies (the transcoder's "invalid value ..." and "Could not resolve
-- ... to a method") quote the client's input in full. This cuts the JSON `message` string
-- of an error body to MAX_MESSAGE_CHARS characters, never inside an escape sequence or a
-- UTF-8 character, and returns the new body (nil when nothing needed cutting).
local MAX_MESSAGE_CHARS = 300
local function clip_message(body)
  local key = string.find(body, '"message":"', 1, true)
  if key == nil then
    return nil
  end
  local start = key + 11 -- first byte of the string's contents
  local i, count, cut = start, 0, nil
  local n = #body
  while i <= n do
    local c = string.byte(body, i)
    if c == 34 then -- the closing quote
      break
    end
    if cut == nil and count >= MAX_MESSAGE_CHARS then
      cut = i
    end
    if c == 92 then -- backslash: skip the escape as one character
      if string.byte(body, i + 1) == 117 then
        i = i + 6
      else
        i = i + 2
      end
    elseif c >= 0xF0 then
      i = i + 4
    elseif c >= 0xE0 then
      i = i + 3
    elseif c >= 0xC0 then
      i = i + 2
    else
      i = i + 1
    end
    count = count + 1
  end
  if cut == nil or i > n then
    return nil
  end
  return string.sub(body, 1, cut - 1) .. "\\u2026" .. string.sub(body, i)
end

-- Returns the override status as a string, or nil when the value is not an HTTP status.
local function valid_status(value)
  if value == nil then
    return nil
  end
  local code = tonumber(value)
  if code == nil or code < 200 or code > 599 or code ~= math.floor(code) then
    return nil
  end
  return string.format("%d", code)
end

-- The vendor (Kore.ai XO) routes, /api/public/... and /api/1.1/public/..., answer errors
-- in the vendor's envelope {"errors":[{"msg":"...","code":<HTTP status>}]}.
local XO_PREFIXES = { "/api/public/", "/api/1.1/public/" }

-- The OpenAI-compatible routes, /v1/..., answer errors in OpenAI's envelope
-- {"error":{"message":"...","type":"...","param":<field or null>,"code":"<reason>"}}.
local OPENAI_PREFIX = "/v1/"

function envoy_on_request(handle)
  local path = handle:headers():get(":path") or ""
  -- The client's method for the access log (the transcoder turns every call into POST).
  handle:streamInfo():dynamicMetadata():set("chatplane", "method", handle:headers():get(":method") or "")
  for _, prefix in ipairs(XO_PREFIXES) do
    if string.sub(path, 1, #prefix) == prefix then
      handle:streamInfo():dynamicMetadata():set("chatplane", "xo", "1")
      return
    end
  end
  if string.sub(path, 1, #OPENAI_PREFIX) == OPENAI_PREFIX then
    handle:streamInfo():dynamicMetadata():set("chatplane", "openai", "1")
  end
end

-- The JSON string contents (still escaped) of the `"message"` of a google.rpc.Status body.
local function status_message(body)
  local key = string.find(body, '"message":"', 1, true)
  if key == nil then
    return nil
  end
  local start, i, n = key + 11, key + 11, #body
  while i <= n do
    local c = string.byte(body, i)
    if c == 34 then
      return string.sub(body, start, i - 1)
    end
    i = i + (c == 92 and 2 or 1)
  end
  return nil
end

local function xo_envelope(handle)
  local meta = handle:streamInfo():dynamicMetadata():get("chatplane")
  if meta == nil or meta["xo"] ~= "1" then
    return
  end
  local headers = handle:headers()
  local code = tonumber(headers:get(":status")) or 200
  if code < 400 then
    return
  end
  local body = handle:body()
  local text = body ~= nil and body:getBytes(0, body:length()) or ""
  local message = status_message(text) or "Request failed"
  local replaced = '{"errors":[{"msg":"' .. message .. '","code":' .. string.format("%d", code) .. "}]}"
  if body ~= nil then
    body:setBytes(replaced)
  end
  headers = handle:headers()
  headers:replace("content-type", "application/json")
  headers:replace("content-length", string.format("%d", #replaced))
end

-- OpenAI's error `type` for an HTTP status.
local function openai_type(code)
  if code == 401 then
    return "authentication_error"
  elseif code == 403 then
    return "permission_error"
  elseif code == 404 then
    return "not_found_error"
  elseif code == 429 then
    return "rate_limit_error"
  elseif code >= 500 then
    return "server_error"
  end
  return "invalid_request_error"
end

-- The (still escaped) contents of the JSON string `"key":"..."` in `body`, or nil.
local function json_string(body, key)
  local at = string.find(body, '"' .. key .. '":"', 1, true)
  if at == nil then
    return nil
  end
  local start = at + #key + 4
  local i, n = start, #body
  while i <= n do
    local c = string.byte(body, i)
    if c == 34 then
      return string.sub(body, start, i - 1)
    end
    i = i + (c == 92 and 2 or 1)
  end
  return nil
end

local function openai_envelope(handle)
  local meta = handle:streamInfo():dynamicMetadata():get("chatplane")
  if meta == nil or meta["openai"] ~= "1" then
    return
  end
  local headers = handle:headers()
  local code = tonumber(headers:get(":status")) or 200
  if code < 400 then
    return
  end
  local body = handle:body()
  local text = body ~= nil and body:getBytes(0, body:length()) or ""
  local message = status_message(text) or "Request failed"
  local reason = json_string(text, "reason")
  local field = json_string(text, "field")
  local param = field ~= nil and ('"' .. field .. '"') or "null"
  local code_value = reason ~= nil and ('"' .. string.lower(reason) .. '"') or "null"
  local replaced = '{"error":{"message":"' .. message .. '","type":"' .. openai_type(code)
    .. '","param":' .. param .. ',"code":' .. code_value .. "}}"
  if body ~= nil then
    body:setBytes(replaced)
  end
  headers = handle:headers()
  headers:replace("content-type", "application/json")
  headers:replace("content-length", string.format("%d", #replaced))
end

function envoy_on_response(handle)
  local headers = handle:headers()
  if is_grpc(headers:get("content-type")) then
    return
  end

  local status = valid_status(headers:get(STATUS_HEADER))

  -- An error reply on a streaming route (a JSON status, not an event stream) is complete
  -- and small: it takes the unary path, so its message is clipped like any other.
  local error_reply = (tonumber(headers:get(":status")) or 200) >= 400
    and not string.find(string.lower(headers:get("content-type") or ""), "text/event-stream", 1, true)
  if not error_reply and is_streaming(handle, headers) then
    if status ~= nil then
      headers:replace(":status", status)
    end
    strip_internal(headers, true)
    return
  end

  -- Unary: the transcoder buffers the whole response anyway; waiting for it here lets the
  -- trailers (error metadata) still change the headers.
  -- Objects obtained before a yield (body(), trailers()) are dead after it: fetch again.
  handle:body() -- waits for the whole response
  local trailers = handle:trailers()
  headers = handle:headers()
  if trailers ~= nil then
    local from_trailers = valid_status(trailers:get(STATUS_HEADER))
    if from_trailers ~= nil then
      status = from_trailers
    end
    for _, name in ipairs(FORWARDED) do
      local value = trailers:get(name)
      if value ~= nil then
        headers:replace(name, value)
        trailers:remove(name)
      end
    end
    strip_internal(trailers, false)
  end

  if status ~= nil then
    headers:replace(":status", status)
  end
  strip_internal(headers, true)

  -- 429 means rate limiting only, and chatplane's 429s carry Retry-After. One without it
  -- is grpc's own size limit (RESOURCE_EXHAUSTED from the gRPC core): headers -> 431,
  -- a message -> 413, with a plain message instead of grpc's (which lists header sizes).
  if headers:get(":status") == "429" and headers:get("retry-after") == nil then
    local body = handle:body()
    local text = body ~= nil and body:getBytes(0, body:length()) or ""
    local code, reason, message = "413", "PAYLOAD_TOO_LARGE", "Request too large"
    if string.find(text, "metadata size", 1, true) then
      code, reason, message = "431", "HEADERS_TOO_LARGE", "Request headers too large"
    elseif string.find(text, "Sent message", 1, true) then
      reason, message = "RESPONSE_TOO_LARGE", "Response too large"
    end
    local replaced = '{"code":8,"message":"' .. message .. '","details":[{"@type":'
      .. '"type.googleapis.com/google.rpc.ErrorInfo","reason":"' .. reason
      .. '","domain":"chatplane.gateway","metadata":{}}]}'
    if body ~= nil then
      body:setBytes(replaced)
    end
    headers = handle:headers()
    headers:replace(":status", code)
    headers:replace("content-type", "application/json")
    headers:replace("content-length", string.format("%d", #replaced))
  end

  local final = tonumber(headers:get(":status")) or 200
  if final >= 400 then
    local body = handle:body()
    if body ~= nil and body:length() > MAX_MESSAGE_CHARS then
      local clipped = clip_message(body:getBytes(0, body:length()))
      if clipped ~= nil then
        body:setBytes(clipped)
        headers = handle:headers()
        headers:replace("content-length", string.format("%d", #clipped))
      end
    end
  end

  if headers:get(":status") == "204" then
    local body = handle:body()
    if body ~= nil then
      body:setBytes("")
    end
    headers:remove("content-length")
    headers:remove("content-type")
  end

  xo_envelope(handle)
  openai_envelope(handle)
end
