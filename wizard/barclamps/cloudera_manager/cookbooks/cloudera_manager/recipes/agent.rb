# frozen_string_literal: true

# A Cloudera Manager agent, reporting to the server.
server = node['cloudera_manager']['server']

package 'cloudera-manager-agent'

template '/etc/cloudera-scm-agent/config.ini' do
  source 'agent.ini.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(host: server['host'], port: server['agent_port'], tls: server['tls'])
  notifies :restart, 'service[cloudera-scm-agent]', :delayed
end

service 'cloudera-scm-agent' do
  action %i(enable start)
end
