# frozen_string_literal: true

# A DNS server of the site: BIND, authoritative for the site's domain (every node by its
# admin address, the static records, the DNS servers as name servers), answering recursive
# queries from the site's networks only and forwarding them when the site has forwarders.
require 'zlib'

dns = node['dns']
bind = dns['bind']
domain = dns['domain']
# a static record's name inside the domain may be given without it (switch1=10.0.0.5)
records = dns['hosts'].to_h.merge(
  dns['static_records'].to_a.to_h do |record|
    name, address = record.split('=', 2)
    [name == domain || name.end_with?(".#{domain}") ? name : "#{name}.#{domain}", address]
  end
)
zone_file = ::File.join(bind['zones'], "db.#{domain}")

package bind['package']

template bind['config'] do
  source 'named.conf.erb'
  owner 'root'
  group bind['group']
  mode '0644'
  variables(
    directory: bind['directory'],
    domain: domain,
    zone_file: zone_file,
    forwarders: dns['forwarders'].to_a,
    allow_recursion: dns['allow_recursion'].to_a
  )
  notifies :restart, "service[#{bind['service']}]", :delayed
end

template zone_file do
  source 'zone.erb'
  owner 'root'
  group bind['group']
  mode '0644'
  variables(
    domain: domain,
    ttl: dns['ttl'],
    # every server is authoritative by itself (no transfers): the serial only has to
    # change with the records, so it is their checksum
    serial: Zlib.crc32(records.sort.inspect),
    name_servers: records.select { |_name, address| dns['servers'].include?(address) }.keys.sort,
    records: records.sort.to_h
  )
  notifies :restart, "service[#{bind['service']}]", :delayed
end

service bind['service'] do
  action %i(enable start)
end
