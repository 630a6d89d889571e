// Node-RED settings for bench/bench_nodered.py: the flow only, no editor,
// warnings only in the log, credentials in plain text (the bench writes
// flows_cred.json itself). The userDir and the ports come from the bench.
//
// TCP_NODELAY: neither the MQTT broker node (MQTT.js) nor anything else in
// Node-RED has a setting for it, and Nagle's algorithm would hold small
// replies back behind unacknowledged data. gatehoused, the broker
// (set_tcp_nodelay) and the simulated devices all use it, so every socket
// this Node-RED opens sets it too, before it connects (modbus-serial's TCP
// port sets it already).
const net = require("net");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
    this.setNoDelay(true);
    return connect.apply(this, args);
};

module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.GH_NODERED_UI_PORT || "1880", 10),
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    flowFile: "flows.json",
    credentialSecret: false,
    flowFilePretty: true,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    functionExternalModules: false,
    editorTheme: { projects: { enabled: false }, tours: false },
};
