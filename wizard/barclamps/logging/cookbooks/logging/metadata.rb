# frozen_string_literal: true

name 'logging'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'rsyslog: the logging server keeps every node\'s log per host; nodes forward theirs to it'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
