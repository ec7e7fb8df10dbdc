-- HTTP status fix-ups for transcoded (REST) responses of chatplane.
--
-- This filter sits BEFORE grpc_json_transcoder in http_filters, so on the response path
-- it runs AFTER it and sees the JSON response plus the gRPC trailers. It:
--   * leaves application/grpc* responses alone (native gRPC clients keep plain codes
--     and all their metadata);
--   * replaces :status with `x-chatplane-http-status` (sent by the server as initial
--     metadata on success, as trailing metadata on errors, or inside the headers of a
--     trailers-only error) and empties the body for 204;
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

function envoy_on_response(handle)
  local headers = handle:headers()
  if is_grpc(headers:get("content-type")) then
    return
  end

  local status = valid_status(headers:get(STATUS_HEADER))

  if is_streaming(handle, headers) then
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

  if headers:get(":status") == "204" then
    local body = handle:body()
    if body ~= nil then
      body:setBytes("")
    end
    headers:remove("content-length")
    headers:remove("content-type")
  end
end
