# frozen_string_literal: true

# An NTP server of the site: follows the upstream servers (when the site has any) and
# serves every network of the site. It keeps serving when upstream is unreachable (a site
# without internet is common), so the nodes still agree with each other.
chrony = node['ntp']['chrony']
# a site whose upstream is one of its own servers must not make that server follow itself
own = node['crowbar']['network'].values

package 'chrony'

template chrony['conf'] do
  source 'chrony.conf.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    sources: node['ntp']['upstream'].to_a - own,
    serves: node['crowbar']['networks'].values.map { |net| net['cidr'] }.uniq.sort,
    max_poll: node['ntp']['max_poll']
  )
  notifies :restart, "service[#{chrony['service']}]", :delayed
end

service chrony['service'] do
  action %i(enable start)
end

timezone node['ntp']['timezone']
