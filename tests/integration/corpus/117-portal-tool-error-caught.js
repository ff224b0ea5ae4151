// about: a tool error is a catchable error with the server's message
// tool: execute
// config: portal
// result: {"caught": true, "says": true}

async () => {
  try {
    await codemode.helpdesk_get_ticket({ id: 999 });
    return { caught: false };
  } catch (e) {
    return { caught: true, says: e.message.includes("no ticket 999") };
  }
}
