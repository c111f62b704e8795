# frozen_string_literal: true

name 'cloudera_manager'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'Cloudera Manager: its package repository, its PostgreSQL database, the server and the agents'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
