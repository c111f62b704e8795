# frozen_string_literal: true

# What ntp::server and ntp::client share: chrony installed, configured with the sources it
# follows and the networks it serves (none on a client), and running in the site's zone.
module CrowbarNtp
  def chrony(sources:, serves:)
    settings = node['ntp']['chrony']

    package 'chrony'

    template settings['conf'] do
      source 'chrony.conf.erb'
      owner 'root'
      group 'root'
      mode '0644'
      variables(sources: sources, serves: serves, max_poll: node['ntp']['max_poll'])
      notifies :restart, "service[#{settings['service']}]", :delayed
    end

    service settings['service'] do
      action %i(enable start)
    end

    timezone node['ntp']['timezone']
  end
end

Chef::DSL::Recipe.include(CrowbarNtp)
