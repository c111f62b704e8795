# frozen_string_literal: true

# What every node needs from the provisioner once installed: root's SSH keys (the
# operator's, as the answers file lists them, and the admin node's own, with which it runs
# chef-client here) and chef-client converging on a timer, so a node that drifts is put
# back even between deployments.
keys = node['crowbar']['provisioning']['ssh_authorized_keys'].to_a +
       node['provisioner']['access_keys'].to_a +
       [node['crowbar']['provisioning']['admin_ssh_key']].compact

directory '/root/.ssh' do
  owner 'root'
  group 'root'
  mode '0700'
end

template '/root/.ssh/authorized_keys' do
  source 'authorized_keys.erb'
  owner 'root'
  group 'root'
  mode '0600'
  variables(keys: keys.uniq)
  not_if { keys.empty? }
end

chef_client_systemd_timer 'chef-client' do
  interval '30min'
  splay '5min'
end
