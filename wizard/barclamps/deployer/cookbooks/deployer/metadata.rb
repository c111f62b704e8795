# frozen_string_literal: true

name 'deployer'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'First on every run list: records each chef-client run in the node for the engine, lists its roles'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
