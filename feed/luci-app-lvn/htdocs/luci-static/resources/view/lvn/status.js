'use strict';
'require view';
'require rpc';
'require poll';
'require ui';

// L-VN status: the service, its tunnels and the agent's peers, from the
// `lvn` ubus object (docs/ubus-api.md); refreshed every 5 s.

var callStatus = rpc.declare({ object: 'lvn', method: 'status', expect: { '': {} } });
var callTunnels = rpc.declare({ object: 'lvn', method: 'tunnels', expect: { tunnels: [] } });
var callPeers = rpc.declare({ object: 'lvn', method: 'peers', expect: { peers: [] } });

// Every string from the service (names from certificates, addresses,
// the configuration's error messages, which quote raw UCI text) goes in as
// escaped text: LuCI inserts a bare string child as HTML.
function h(v) {
	return (v == null) ? '-' : '%h'.format(String(v));
}

function age(ms) {
	if (ms == null)
		return '-';
	return '%.1f s'.format(ms / 1000);
}

function endpoint(addr, port) {
	if (!addr)
		return '-';
	return (addr.indexOf(':') >= 0 ? '[%h]:%d' : '%h:%d').format(addr, port);
}

function statusTable(s) {
	var errors = (s.config && s.config.errors) || [], warnings = s.warnings || [];
	var rows = [
		E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left', 'width': '33%' }, _('Version')), E('td', { 'class': 'td left' }, h(s.version)) ]),
		E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left' }, _('Agent')), E('td', { 'class': 'td left', 'data-name': 'role' },
			s.agent_enabled ? h(s.role) : _('off')) ]),
		E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left' }, _('Configuration')), E('td', { 'class': 'td left', 'data-name': 'config' },
			s.config && s.config.valid ? _('valid') : _('refused: %s').format(h(errors.join('; ')))) ]),
		E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left' }, _('Devices / tunnels / peers')),
			E('td', { 'class': 'td left' }, '%d / %d / %d'.format(s.devices, s.tunnels, s.peers)) ])
	];
	if (warnings.length)
		rows.push(E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left' }, _('Warnings')),
			E('td', { 'class': 'td left', 'data-name': 'warnings' }, h(warnings.join('; '))) ]));
	return E('table', { 'class': 'table', 'id': 'lvn-status' }, rows);
}

function tunnelRows(tunnels) {
	return tunnels.map(function(t) {
		return [
			h(t.ifname), t.id, h(t.mode), t.static ? h(t.static) : _('agent'),
			endpoint(t.remote, t.remote_port),
			E('span', { 'data-name': 'rx_packets' }, String(t.stats.rx_packets)),
			E('span', { 'data-name': 'tx_packets' }, String(t.stats.tx_packets)),
			'%1024.2mB / %1024.2mB'.format(t.stats.rx_bytes, t.stats.tx_bytes),
			age(t.last_rx_ms)
		];
	});
}

function peerRows(peers) {
	var now = Date.now() / 1000;
	return peers.map(function(p) {
		return [ E('span', { 'data-name': 'peer' }, h(p.name)), h(p.state),
			p.endpoint ? endpoint(p.endpoint[0], p.endpoint[1]) : '-',
			h((p.addresses || []).join(' ')), p.last_heard != null ? age((now - p.last_heard) * 1000) : '-' ];
	});
}

function titles(names) {
	return E('tr', { 'class': 'tr table-titles' }, names.map(function(n) {
		return E('th', { 'class': 'th' }, n);
	}));
}

return view.extend({
	load: function() {
		return Promise.all([ callStatus(), callTunnels(), callPeers() ]);
	},

	update: function(data) {
		var status = data[0], fresh = statusTable(status);
		this.status.parentNode.replaceChild(fresh, this.status);
		this.status = fresh;
		cbi_update_table(this.tunnels, tunnelRows(data[1]), E('em', _('No tunnels.')));
		cbi_update_table(this.peers, peerRows(data[2]),
			E('em', status.agent_enabled ? _('No peers.') : _('The agent is off.')));
	},

	render: function(data) {
		this.status = statusTable(data[0]);
		this.tunnels = E('table', { 'class': 'table', 'id': 'lvn-tunnels' }, titles([
			_('Device'), _('ID'), _('Mode'), _('Section'), _('Endpoint'), _('RX packets'),
			_('TX packets'), _('RX / TX'), _('Last heard') ]));
		this.peers = E('table', { 'class': 'table', 'id': 'lvn-peers' }, titles([
			_('Peer'), _('State'), _('Endpoint'), _('Addresses'), _('Last heard') ]));

		var view = E('div', { 'class': 'cbi-map' }, [
			E('h2', _('L-VN')),
			E('div', { 'class': 'cbi-map-descr' }, _('The Lite Virtual Network: IP-in-UDP tunnels in the kernel.')),
			E('div', { 'class': 'cbi-section' }, [ E('h3', _('Service')), this.status ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', _('Tunnels')), this.tunnels ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', _('Peers')), this.peers ])
		]);
		this.update(data);

		poll.add(L.bind(function() {
			return this.load().then(L.bind(this.update, this));
		}, this), 5);

		return view;
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
