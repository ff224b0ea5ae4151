// about: success, errors and result_info of the envelope read straight off the response
// tool: execute
// config: cloudflare
// check: value["success"] is True and isinstance(value["errors"], list) and value["hasInfo"] is True and value["count"] >= 1

async () => {
  const response = await cloudflare.request("GET /zones");
  return {
    success: response.success,
    errors: response.errors,
    hasInfo: typeof response.result_info === "object",
    count: response.result.length,
  };
}
