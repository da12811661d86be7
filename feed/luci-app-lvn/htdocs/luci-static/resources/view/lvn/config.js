'use strict';
'require view';
'require form';
'require rpc';
'require uci';
'require ui';

// L-VN configuration: /etc/config/lvn (docs/config.md) through LuCI's uci
// classes.  Save checks the whole file with the service's own rules
// (`ubus call lvn validate`, the messages of `lvn config validate`) before
// anything is staged; Save & Apply then commits, and procd's reload
// trigger applies the change by diff.

var callValidate = rpc.declare({ object: 'lvn', method: 'validate', params: [ 'sections' ] });

// LuCI datatypes as close to lvn/schema.py as LuCI has them: the form
// refuses what is surely wrong, the service's own check (Save) decides
var DATATYPES = {
	listen_port: 'port', data_port: 'port', server_port: 'port', port: 'port', remote_port: 'port',
	ifname: 'netdevname',
	pool4: 'cidr4', pool6: 'cidr6', mtu: 'range(576,9000)', keepalive: 'range(0,3600)',
	idle_timeout: 'range(1,86400)', dead_after: 'range(1,100)', lease_ttl: 'range(0,36500)',
	server: 'host',
	server_name: 'hostname', local: 'ipaddr', remote: 'ipaddr',
	address: 'cidr', route: 'cidr', allowed_source: 'cidr'
};
// files and directories: absolute paths, as lvn/schema.py wants them
var PATHS = [ 'ca', 'cert', 'key', 'crl', 'state_dir' ];

function absolutePath(section_id, value) {
	return (!value || value.charAt(0) == '/') ? true : _('Expecting an absolute path');
}

function text(s, name, title, descr, placeholder) {
	var o = s.option(form.Value, name, title, descr);
	if (placeholder)
		o.placeholder = placeholder;
	if (DATATYPES[name])
		o.datatype = DATATYPES[name];
	else if (PATHS.indexOf(name) >= 0)
		o.validate = absolutePath;
	o.rmempty = true;
	return o;
}

return view.extend({
	load: function() {
		return uci.load('lvn');
	},

	render: function() {
		var m, s, o;

		m = new form.Map('lvn', _('L-VN configuration'),
			_('Static tunnels and the agent of the Lite Virtual Network. The whole file is checked by the L-VN service before it is saved; an invalid file is refused and what runs keeps running.'));

		s = m.section(form.NamedSection, 'agent', 'agent', _('Agent'));
		s.addremove = false;
		o = s.option(form.Flag, 'enabled', _('Run the agent'));
		o.rmempty = false;
		o = s.option(form.ListValue, 'role', _('Role'));
		o.value('none', _('none'));
		o.value('server', _('server'));
		o.value('client', _('client'));
		o = s.option(form.ListValue, 'log_level', _('Log level'));
		[ 'debug', 'info', 'warning', 'error' ].forEach(function(l) { o.value(l); });
		text(s, 'state_dir', _('State directory'), null, '/var/lib/lvn');

		s = m.section(form.NamedSection, 'server', 'server', _('Server role'));
		s.addremove = true;
		[ [ 'listen_port', _('Control port (TLS)') ], [ 'data_port', _('Data port (UDP)') ],
		  [ 'ifname', _('Device') ], [ 'ca', _('CA certificate') ], [ 'cert', _('Certificate') ],
		  [ 'key', _('Private key') ], [ 'crl', _('Revocation list') ], [ 'pool4', _('IPv4 pool') ],
		  [ 'pool6', _('IPv6 pool') ], [ 'mtu', _('MTU') ], [ 'keepalive', _('Keepalive (s)') ],
		  [ 'idle_timeout', _('Idle timeout (s)') ],
		  [ 'lease_ttl', _('Addresses kept for absent nodes (days, 0: forever)') ] ].forEach(function(x) { text(s, x[0], x[1]); });
		o = s.option(form.ListValue, 'lease_store', _('Leases'),
			_('etcd: shared by several servers, so that a node keeps its addresses on any of them'));
		o.value('file', _('file (one server)'));
		o.value('etcd', 'etcd');
		o.default = 'file';
		o = s.option(form.DynamicList, 'etcd', _('etcd endpoints'), 'http://host:port');
		o.depends('lease_store', 'etcd');
		text(s, 'etcd_prefix', _('etcd key prefix'), null, '/lvn').depends('lease_store', 'etcd');

		s = m.section(form.NamedSection, 'client', 'client', _('Client role'));
		s.addremove = true;
		o = s.option(form.DynamicList, 'server', _('Servers'),
			_('Joined in turn: the next one after a failed join or a lost session'));
		o.datatype = DATATYPES.server;
		[ [ 'server_name', _('Server certificate name') ],
		  [ 'server_port', _('Server port') ], [ 'data_port', _('Data port (UDP)') ],
		  [ 'ifname', _('Device') ], [ 'ca', _('CA certificate') ], [ 'cert', _('Certificate') ],
		  [ 'key', _('Private key') ], [ 'crl', _('Revocation list') ],
		  [ 'keepalive', _('Keepalive (s)') ],
		  [ 'dead_after', _('Unanswered keepalives before rejoining') ] ].forEach(function(x) { text(s, x[0], x[1]); });

		s = m.section(form.GridSection, 'tunnel', _('Static tunnels'),
			_('Tunnels without agent or authentication, like a plain ipip link over UDP.'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;
		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';  // as lvn reads a tunnel without the option
		o.rmempty = false;
		o.editable = true;
		text(s, 'ifname', _('Device'));
		o = s.option(form.ListValue, 'mode', _('Mode'));
		o.value('fixed');
		o.value('multi');
		o.default = 'fixed';
		text(s, 'port', _('Local port'));
		text(s, 'local', _('Local address')).modalonly = true;
		text(s, 'remote', _('Remote address')).editable = true;
		text(s, 'remote_port', _('Remote port')).editable = true;
		text(s, 'mtu', _('MTU')).modalonly = true;
		text(s, 'keepalive', _('Keepalive (s)')).modalonly = true;
		o = s.option(form.DynamicList, 'address', _('Addresses'));
		o.datatype = DATATYPES.address;
		o.modalonly = true;
		o = s.option(form.DynamicList, 'route', _('Routes'));
		o.datatype = DATATYPES.route;
		o.depends('mode', 'multi');
		o.modalonly = true;
		o = s.option(form.DynamicList, 'allowed_source', _('Allowed sources'));
		o.datatype = DATATYPES.allowed_source;
		o.modalonly = true;

		this.map = m;
		return m.render();
	},

	// the form's values into uci.js (not yet staged), checked by the
	// service; staged only when valid.  Resolves to whether it was saved.
	handleSave: function(ev) {
		var m = this.map;
		return m.parse().then(function() {
			return callValidate(uci.sections('lvn'));
		}).then(function(res) {
			var old = document.getElementById('lvn-errors');
			if (old && old.parentNode)
				old.parentNode.parentNode.removeChild(old.parentNode);
			if (res && res.valid)
				return m.save().then(function() { return true; });
			var errors = (res && res.errors) || [ _('no answer from the L-VN service') ];
			ui.addNotification(_('The configuration was not saved'), E('div', {}, [
				// the messages quote raw UCI text: escaped, never markup
				E('ul', { 'id': 'lvn-errors' }, errors.map(function(e) { return E('li', '%h'.format(String(e))); }))
			]), 'danger');
			return false;
		});
	},

	handleSaveApply: function(ev, mode) {
		return this.handleSave(ev).then(function(saved) {
			if (saved)
				ui.changes.apply(mode == '0');
		});
	}
});
