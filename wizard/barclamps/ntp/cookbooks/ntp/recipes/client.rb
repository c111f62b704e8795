# frozen_string_literal: true

# Every other node follows the site's NTP servers only, and serves no one.
chrony = node['ntp']['chrony']

package 'chrony'

template chrony['conf'] do
  source 'chrony.conf.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    sources: node['ntp']['servers'].to_a,
    serves: [],
    max_poll: node['ntp']['max_poll']
  )
  notifies :restart, "service[#{chrony['service']}]", :delayed
end

service chrony['service'] do
  action %i(enable start)
end

timezone node['ntp']['timezone']
