# frozen_string_literal: true

name 'dns'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'BIND on the DNS servers, authoritative for the site domain; the resolver of the nodes'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
