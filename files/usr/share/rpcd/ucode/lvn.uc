'use strict';
// The `lvn` ubus object, served by rpcd: rpcd checks the ACL and the
// argument types (and lets uhttpd/LuCI add ubus_rpc_session); each call
// goes to the lvn service's control socket as one JSON line, and its
// reply line's ubus status and data come back to the caller
// (docs/ubus-api.md).  The argument types match lvn/ubus_api.py SIGNATURES.

import * as socket from 'socket';

const CONTROL = '/var/run/lvn/control.sock';
// rpcd answers one call at a time: a service that is slow (or stuck) must
// not freeze rpcd, and LuCI with it.  One deadline for the whole call.
const TIMEOUT_MS = 3000;

function now_ms() {
	const t = clock(true);
	return t[0] * 1000 + t[1] / 1000000;
}

function wait_opts(sk, left_ms) {
	const ms = int(left_ms);
	const tv = { sec: int(ms / 1000), usec: (ms % 1000) * 1000 };
	sk.setopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv);
	sk.setopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv);
}

function forward(req, method) {
	const args = { ...req.args };
	delete args.ubus_rpc_session;

	const sk = socket.connect({ family: socket.AF_UNIX, path: CONTROL });
	if (!sk)
		return req.reply({ error: `the lvn service is not running (${CONTROL}: ${socket.error()})` },
			UBUS_STATUS_NOT_FOUND);

	const deadline = now_ms() + TIMEOUT_MS;
	wait_opts(sk, TIMEOUT_MS);
	sk.send(sprintf('%J\n', { method, args }));

	let buf = '';
	for (let left = deadline - now_ms(); left > 0; left = deadline - now_ms()) {
		wait_opts(sk, left);
		const chunk = sk.recv(65536);
		if (chunk == null || length(chunk) == 0)
			break;
		buf += chunk;
		if (index(chunk, '\n') >= 0)
			break;
	}
	sk.close();
	if (index(buf, '\n') < 0 && now_ms() >= deadline)
		return req.reply({ error: `the lvn service did not answer within ${TIMEOUT_MS / 1000} s` },
			UBUS_STATUS_TIMEOUT);

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
		tunnel_del: method('tunnel_del', { name: 'name' }),
		drain: method('drain', { rate: 32 }),
		undrain: method('undrain', {})
	}
};
