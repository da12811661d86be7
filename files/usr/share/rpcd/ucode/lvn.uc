'use strict';
// The `lvn` ubus object, served by rpcd: rpcd checks the ACL and the
// argument types (and lets uhttpd/LuCI add ubus_rpc_session); each call
// goes to the lvn service's control socket as one JSON line, and its
// reply line's ubus status and data come back to the caller
// (docs/ubus-api.md).  The argument types match lvn/ubus_api.py SIGNATURES.

import * as socket from 'socket';

const CONTROL = '/var/run/lvn/control.sock';
const TIMEOUT_S = 10;

function forward(req, method) {
	const args = { ...req.args };
	delete args.ubus_rpc_session;

	const sk = socket.connect({ family: socket.AF_UNIX, path: CONTROL });
	if (!sk)
		return req.reply({ error: `the lvn service is not running (${CONTROL}: ${socket.error()})` },
			UBUS_STATUS_NOT_FOUND);

	sk.setopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, { sec: TIMEOUT_S, usec: 0 });
	sk.setopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, { sec: TIMEOUT_S, usec: 0 });
	sk.send(sprintf('%J\n', { method, args }));

	let buf = '';
	for (let chunk = sk.recv(65536); chunk != null && length(chunk) > 0; chunk = sk.recv(65536)) {
		buf += chunk;
		if (index(chunk, '\n') >= 0)
			break;
	}
	sk.close();

	let reply = null;
	try {
		reply = json(buf);
	}
	catch (e) {
		reply = null;
	}
	if (type(reply) != 'object' || type(reply.status) != 'int' || type(reply.data) != 'object')
		return req.reply({ error: `no valid reply from the lvn service (${length(buf)} bytes)` },
			UBUS_STATUS_UNKNOWN_ERROR);

	return req.reply(reply.data, reply.status);
}

function method(name, args) {
	return { args, call: (req) => forward(req, name) };
}

return {
	lvn: {
		status: method('status', {}),
		tunnels: method('tunnels', { ifname: 'ifname' }),
		peers: method('peers', {}),
		validate: method('validate', { sections: [] }),
		reload: method('reload', {}),
		tunnel_add: method('tunnel_add', { name: 'name', tunnel: {} }),
		tunnel_del: method('tunnel_del', { name: 'name' })
	}
};
